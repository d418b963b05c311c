"""The thread backend's outbox side: the write before ``submit`` returns, the lease
keeper, and moving outbox rows into memory as it has room.

Memory is a cache of the outbox: when memory is full an event waits in the outbox only
(``overflow``), and the keeper brings it in later, oldest first, so a visit keeps its
order. Talks to the outbox through ``GuardedOutbox`` and the ``Outbox`` interface only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..._wire import Event
from ..outbox import OutboxError
from ..outbox.guarded import OPEN_WAIT, GuardedOutbox
from ..outbox.keeper import LeaseKeeper
from ..support.counters import Counters
from .queue import Item, MemoryQueue, estimate_size
from .threads import Threads

__all__ = ["Relay"]


class Relay:
    """Moves events between a ``MemoryQueue`` and the outbox, and starts the lease keeper
    (one of ``threads``); ``start_sender`` starts a sender thread (counted already) when
    memory gets work while none runs."""

    def __init__(
        self,
        queue: MemoryQueue,
        threads: Threads,
        durable: GuardedOutbox,
        counters: Counters,
        start_sender: Callable[[], None],
    ) -> None:
        self._queue = queue
        self._threads = threads
        self._durable = durable
        self._counters = counters
        self._start_sender = start_sender
        self._refill_lock = threading.Lock()
        #: Events are in memory only (the outbox was not open, or busy past the bound):
        #: the keeper writes them to the outbox as soon as it can.
        self._late = False
        durable.want_open = self._want_open

    def submit(self, event: Event, size: int) -> bool:
        """Write the event to the outbox before returning; in memory too if it has room
        and its row is ours (no earlier row of its visit is elsewhere). Waits for the
        outbox at most ``OPEN_WAIT`` to open, and the store's bound to write."""
        durable, queue = self._durable, self._queue
        self.start_keeper()
        usable = durable.outbox is not None or durable.wait_open(OPEN_WAIT) is not None
        if not usable:
            durable.failed(
                "the outbox %s is not open yet; the event waits in memory", durable.location
            )
        with queue.lock:
            room = queue.reserve(size)  # the place, before the (slower) write
        leased = durable.put(event, claimed=room) if usable else None
        stored = leased is not None
        with queue.lock:
            if room and (leased or not stored):  # ours, or in memory only
                queue.push(Item(event, size, stored), counted=True)
                self._late = self._late or not stored
            elif room:  # stored behind an earlier row of its visit: claimed in its turn
                # (by the keeper's rounds or flush(); not ``overflow``, which would send
                # other visits' events through the outbox too)
                queue.release(size)
            elif stored:
                queue.set_overflow(True)
            start = (room or stored) and queue.first_sender()
        if room or stored:
            self._counters.add("enqueued")
        else:
            self._counters.finish("dropped_queue_full", event.kind)
        if start:
            self._start_sender()
        if stored and not leased:
            self._threads.wake_keeper()
        return room or stored

    def start_keeper(self) -> None:
        """Start the process's lease keeper, unless one runs: it opens the outbox, replays
        it and keeps our leases (a shutdown stops it; the next start makes another)."""
        queue, durable, threads = self._queue, self._durable, self._threads
        if threads.keeper is not None or durable.location is None:
            return
        with queue.lock:
            if threads.keeper is not None:
                return
            keeper = LeaseKeeper(durable.open, self.refill, self._keeper_failed, threads.stop)
            threads.keeper = keeper
        try:
            keeper.thread.start()
        except RuntimeError:  # interpreter shutting down
            threads.keeper = None
            return
        threads.add(keeper.thread)

    def _want_open(self) -> None:
        """A request waits for the outbox: have the keeper try to open it now."""
        self.start_keeper()
        self._threads.wake_keeper()

    def _keeper_failed(self, exc: OutboxError) -> None:
        self._durable.failed("outbox maintenance failed: %s", exc)

    def persist_late(self) -> None:
        """Write the events held in memory only to the outbox (leased to us: we send
        them). A row that is not ours after all (its visit has an earlier row another
        process holds) hands the event over to the outbox's order, unless a sender has it
        now; a row whose event AFFY answered, or a sender has, while the row was being
        written and is not ours, is deleted again: nobody sends an event twice."""
        queue, durable = self._queue, self._durable
        if not self._late or durable.outbox is None:
            return
        with queue.lock:
            self._late = False
            items = queue.unstored()
        for n, item in enumerate(items):
            leased = durable.put(item.event, claimed=True)
            if leased is None:  # still failing: later
                self._late = True
                return
            durable.stored(item.event.event_id)
            with queue.lock:
                keep = not item.answered and (leased or not queue.sending(item))
                item.stored = keep
            if not keep:  # AFFY answered it, or is being sent it now: the row must go
                durable.delete(item.event.event_id)
            if n % 64 == 63 and self._threads.stop.is_set():
                self._late = True
                return

    def refill(self) -> int:
        """Move claimable outbox rows into memory, as far as it has room; how many.
        Raises OutboxError."""
        try:
            return self._refill()
        finally:  # outside every lock: the app's on_error may call back into us
            self._durable.tell_given_up()

    def _refill(self) -> int:
        outbox, queue = self._durable.outbox, self._queue
        if outbox is None:
            return 0
        self.persist_late()
        with self._refill_lock:  # one at a time, so flush() sees the keeper's claims
            with queue.lock:
                room, overflow = queue.refill_room(), queue.overflow
            if room <= 0:
                return 0
            events = self._durable.claim(room)
            with queue.lock:
                for event in events:
                    queue.push(Item(event, estimate_size(event), True))
                if overflow and len(events) < room:
                    queue.set_overflow(False)
                elif len(events) == room:  # maybe more: claim again once half empty
                    queue.set_overflow(True)
                start = bool(events) and queue.first_sender()
            if start:
                self._start_sender()
            return len(events)
