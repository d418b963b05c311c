"""The thread backend's outbox side: the write before ``submit`` returns, the lease
keeper, and moving outbox rows into memory as it has room.

Memory is a cache of the outbox: when memory is full an event waits in the outbox only
(``overflow``), and the keeper brings it in later, oldest first, so a visit keeps its
order. Talks to the outbox through ``Durable`` and the ``Outbox`` interface only.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

from .._wire import Event
from .counters import Counters
from .durable import Durable
from .outbox import OutboxError
from .outbox.keeper import LeaseKeeper
from .queue import Generation, Item, MemoryQueue, estimate_size

__all__ = ["Relay"]


class Relay:
    """Moves events between a ``MemoryQueue`` and the outbox; ``start_sender`` starts a
    sender thread (counted already) when memory gets work while none runs."""

    def __init__(
        self,
        queue: MemoryQueue,
        durable: Durable,
        counters: Counters,
        start_sender: Callable[[], None],
    ) -> None:
        self._queue = queue
        self._durable = durable
        self._counters = counters
        self._start_sender = start_sender
        self._refill_lock = threading.Lock()

    def submit(self, event: Event, size: int) -> bool:
        """Write the event to the outbox before returning; in memory too if it has room."""
        self._durable.open()
        queue = self._queue
        with queue.lock:
            room = not queue.overflow and queue.has_room(size)
            if room:  # reserve the place before the (slower) write
                queue.count += 1
                queue.bytes += size
        stored = self._durable.put(event, claimed=room)
        with queue.lock:
            if room:
                queue.push(Item(event, size, stored), counted=True)
            elif stored:
                queue.overflow = True
            start = (room or stored) and queue.first_sender()
        self._counters.add("enqueued" if room or stored else "dropped_queue_full")
        if start:
            self._start_sender()
        self.start_keeper()
        return room or stored

    def start_keeper(self) -> None:
        """Start this generation's lease keeper, once (it also replays the outbox)."""
        queue, outbox = self._queue, self._durable.outbox
        gen = queue.gen
        if gen.keeper is not None or outbox is None:
            return
        with queue.lock:
            if gen.keeper is not None:
                return
            refill = functools.partial(self.refill, gen)
            keeper = gen.keeper = LeaseKeeper(outbox, refill, self._keeper_failed, gen.stop)
        try:
            keeper.thread.start()
        except RuntimeError:  # interpreter shutting down
            gen.keeper = None
            return
        gen.threads.append(keeper.thread)

    def _keeper_failed(self, exc: OutboxError) -> None:
        self._durable.failed("spool maintenance failed: %s", exc)

    @staticmethod
    def wake(gen: Generation) -> None:
        """Have the keeper look at the outbox now (memory has room again)."""
        if gen.keeper is not None:
            gen.keeper.wake.set()

    def refill(self, gen: Generation) -> int:
        """Move claimable outbox rows into memory, as far as it has room; how many.
        Raises OutboxError."""
        outbox, queue = self._durable.outbox, self._queue
        if outbox is None:
            return 0
        with self._refill_lock:  # one at a time, so flush() sees the keeper's claims
            with queue.lock:
                room, overflow = queue.refill_room(), queue.overflow
            if room <= 0:
                return 0
            events = outbox.claim(room)
            with queue.lock:
                current = gen is queue.gen
                if current:
                    for event in events:
                        queue.push(Item(event, estimate_size(event), True))
                    if overflow and len(events) < room:
                        queue.overflow = False
                    elif len(events) == room:  # maybe more: claim again once half empty
                        queue.overflow = True
                    start = bool(events) and queue.first_sender()
            if not current:  # shut down meanwhile: for the next process (or start)
                outbox.release(e.event_id for e in events)
                return 0
            if start:
                self._start_sender()
            return len(events)
