"""Per-visit ordering: which waiting item may be sent next.

Items sharing an order key (one visit: click, registration, payment) go strictly one after
another; items of different visits, or without a key, go in parallel. An item that must
try again later (a backoff, a lead waiting for its click) is *parked* until its time: its
visit stays held, but no sender waits for it. Not thread-safe: the thread backend calls it
under its queue lock. No threads here, so it is tested alone.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["VisitOrder"]

T = TypeVar("T")


class VisitOrder(Generic[T]):
    """Items waiting to go out, and those out (in flight), in per-key order::

        order = VisitOrder(key=lambda event: event.order_key)
        order.push(click); order.push(payment)    # same visit
        order.take()          # click
        order.take()          # None: the payment waits for the click
        order.done(click)     # payment: hand it to the same sender, next
    """

    def __init__(self, key: Callable[[T], str | None]) -> None:
        self._key = key
        self.ready: deque[T] = deque()
        #: Order keys with an item out -> the items of that key waiting behind it.
        self._busy: dict[str, deque[T]] = {}
        self._out: dict[int, T] = {}
        #: Items waiting for their time (monotonic), their visit held: a heap.
        self._parked: list[tuple[float, int, T]] = []
        self._seq = itertools.count()  # ties in the heap never compare items

    @property
    def in_flight(self) -> int:
        return len(self._out)

    def push(self, item: T) -> None:
        self.ready.append(item)

    def take(self, now: float | None = None) -> T | None:
        """The next item whose key has nothing out (or a parked item whose time has come),
        marked out; None when none may go."""
        parked = self._parked
        if parked and parked[0][0] <= (time.monotonic() if now is None else now):
            item = heapq.heappop(parked)[2]
            self._out[id(item)] = item
            return item
        ready, busy = self.ready, self._busy
        while ready:
            item = ready.popleft()
            key = self._key(item)
            if key is not None:
                backlog = busy.get(key)
                if backlog is not None:  # an earlier item of this visit is out
                    backlog.append(item)
                    continue
                busy[key] = deque()
            self._out[id(item)] = item
            return item
        return None

    def done(self, item: T) -> T | None:
        """``item`` is finished; the next item of its key, marked out, or None."""
        self._out.pop(id(item), None)
        key = self._key(item)
        if key is None:
            return None
        backlog = self._busy.get(key)
        if not backlog:
            self._busy.pop(key, None)
            return None
        nxt = backlog.popleft()
        self._out[id(nxt)] = nxt
        return nxt

    def park(self, item: T, at: float) -> None:
        """``item`` (out) tries again at ``at`` (monotonic): nobody holds it meanwhile, and
        the rest of its visit still waits behind it."""
        self._out.pop(id(item), None)
        heapq.heappush(self._parked, (at, next(self._seq), item))

    def wait_time(self, longest: float, now: float | None = None) -> float:
        """Seconds until a parked item is due, at most ``longest``."""
        if not self._parked:
            return longest
        now = time.monotonic() if now is None else now
        return max(0.0, min(longest, self._parked[0][0] - now))

    def waiting(self) -> list[T]:
        """Every item not out: ready ones and those behind an item of their visit."""
        items = [entry[2] for entry in sorted(self._parked)]
        items.extend(self.ready)
        for backlog in self._busy.values():
            items.extend(backlog)
        return items

    def is_out(self, item: T) -> bool:
        """Whether ``item`` is handed out (a sender has it)."""
        return id(item) in self._out

    def out(self) -> list[T]:
        return list(self._out.values())

    def heads(self) -> list[T]:
        """The items one of which is the oldest (read-only, for ``health()``): every item
        out or parked, the first ready one and the first of each backlog (each line is in
        order)."""
        items = list(self._out.values())
        items.extend(entry[2] for entry in self._parked)
        if self.ready:
            items.append(self.ready[0])
        items.extend(backlog[0] for backlog in self._busy.values() if backlog)
        return items
