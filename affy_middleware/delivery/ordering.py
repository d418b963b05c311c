"""Per-visit ordering: which waiting item may be sent next.

Items sharing an order key (one visit: click, registration, payment) go strictly one after
another; items of different visits, or without a key, go in parallel. Not thread-safe:
the thread backend calls it under its queue lock. No threads here, so it is tested alone.
"""

from __future__ import annotations

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

    @property
    def in_flight(self) -> int:
        return len(self._out)

    def push(self, item: T) -> None:
        self.ready.append(item)

    def take(self) -> T | None:
        """The next item whose key has nothing out, marked out; None when none may go."""
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

    def put_back(self, item: T) -> None:
        """An item handed out by ``done`` that will not be sent now (stopping): it goes
        back to the head of its key's backlog, still ahead of the rest of its visit."""
        self._out.pop(id(item), None)
        key = self._key(item) or ""
        self._busy.setdefault(key, deque()).appendleft(item)

    def waiting(self) -> list[T]:
        """Every item not out: ready ones and those behind an item of their visit."""
        items = list(self.ready)
        for backlog in self._busy.values():
            items.extend(backlog)
        return items

    def out(self) -> list[T]:
        return list(self._out.values())

    def heads(self) -> list[T]:
        """The items one of which is the oldest (read-only, for ``health()``): every item
        out, the first ready one and the first of each backlog (each line is in order)."""
        items = list(self._out.values())
        if self.ready:
            items.append(self.ready[0])
        items.extend(backlog[0] for backlog in self._busy.values() if backlog)
        return items
