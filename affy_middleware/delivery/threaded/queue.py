"""The thread backend's memory: a bounded queue in visit order, and its sender count.

Bounded by count and by an estimate of bytes. Everything here runs under ``lock`` (one
per process, never replaced: threads may wait on its conditions); the threads themselves
live in ``senders.py``. Nothing is ever reset while threads run: ``count`` and
``senders`` go down only when their own item or thread ends, so they never go negative,
and shutdown takes out only what no thread holds (:meth:`MemoryQueue.sweep`).
"""

from __future__ import annotations

import threading

from ..._settings import Settings
from ..._wire import Event
from ..outbox.keeper import LeaseKeeper
from .ordering import VisitOrder

__all__ = ["Generation", "Item", "MemoryQueue", "estimate_size"]

#: Per-event overhead in the byte estimate: the Event, its dict, its id and timestamps,
#: the queue entry (measured: 10 000 queued clicks take ~9 MB of RSS).
EVENT_OVERHEAD = 600
#: Per-field overhead: a str object's header (shared dict keys are not counted).
FIELD_OVERHEAD = 56
#: Seconds an idle sender thread waits before looking around again.
IDLE_WAIT = 5.0


def estimate_size(event: Event) -> int:
    """A cheap, slightly pessimistic estimate of an event's memory, without JSON."""
    size = EVENT_OVERHEAD
    for value in event.body.values():
        size += FIELD_OVERHEAD + len(value) if type(value) is str else 32
    return size


class Item:
    """An event in memory: its size estimate, whether its outbox row is ours, its tries."""

    __slots__ = ("event", "size", "stored", "attempts")

    def __init__(self, event: Event, size: int, stored: bool) -> None:
        self.event = event
        self.size = size
        self.stored = stored
        self.attempts = 0


def _order_key(item: Item) -> str | None:
    return item.event.order_key


class Generation:
    """What the threads of one process share (one per process: a shutdown sets ``stop``
    and clears it again once the threads it stopped were joined or given up on)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.keeper: LeaseKeeper | None = None


class MemoryQueue:
    """Events accepted and not finished (waiting, behind their visit, or in flight)."""

    def __init__(self, settings: Settings, lock: threading.Lock) -> None:
        self._settings = settings
        self.lock = lock
        self.work = threading.Condition(self.lock)  # idle senders
        self.done = threading.Condition(self.lock)  # flush() waiters
        self.order: VisitOrder[Item] = VisitOrder(_order_key)
        self.count = 0  # items not finished (ready, behind their visit, in flight)
        self.bytes = 0
        self.senders = 0  # sender threads started and not ended
        self.idle = 0  # of which waiting for work
        self.overflow = False  # newer events wait in the outbox, not in memory
        self.gen = Generation()
        #: When the first sender thread was started, and whether any sender ever looked
        #: for work: a server that never lets threads run (uWSGI without threads, on some
        #: builds) shows as a sender started long ago that never ran.
        self.started_at = 0.0
        self.ran = False

    def sweep(self, *, keep_stored: bool) -> list[Item]:
        """Take out every item no thread holds (at shutdown), except outbox-backed ones
        when ``keep_stored``: those stay queued for the next start. Items in flight stay
        their threads', which finish them (and count them) themselves."""
        old = self.order
        waiting = old.waiting()  # the ready ones, then those behind their visit's first
        ready = len(old.ready)
        waiting = waiting[ready:] + waiting[:ready]  # in each visit, older ones first
        left = [item for item in waiting if not (keep_stored and item.stored)]
        if not left:
            return []
        self.order = VisitOrder(_order_key)
        for item in old.out():  # still out: its visit's next item waits behind it
            self.order.push(item)
            self.order.take()
        kept = {id(item) for item in left}
        for item in waiting:
            if id(item) not in kept:
                self.order.push(item)
        for item in left:
            self.count -= 1
            self.bytes -= item.size
        if self.count == 0:
            self.done.notify_all()
        return left

    def has_room(self, size: int) -> bool:
        settings = self._settings
        return self.count < settings.queue_size and self.bytes + size <= settings.queue_bytes

    def push(self, item: Item, *, counted: bool = False) -> None:
        """Queue an item (``counted``: its place was reserved already)."""
        self.order.push(item)
        if not counted:
            self.count += 1
            self.bytes += item.size
        if self.idle:
            self.work.notify()

    def first_sender(self) -> bool:
        """Whether a sender must be started (counted now) for what was just queued."""
        if self.senders == 0:
            self.senders = 1
            return True
        return False

    def take(self, gen: Generation) -> tuple[Item | None, int]:
        """The next event whose visit has nothing in flight (waiting for one), and how
        many sender threads to add (counted already). None when ``gen`` stops."""
        self.ran = True
        while True:
            order = self.order  # (a shutdown's sweep may have replaced it meanwhile)
            if gen.stop.is_set():
                return None, 0
            item = order.take()
            if item is not None:
                # More waiting than idle threads: grow the pool, up to max_in_flight.
                grow = min(
                    len(order.ready) - self.idle, self._settings.max_in_flight - self.senders
                )
                if grow > 0:
                    self.senders += grow
                return item, max(grow, 0)
            self.idle += 1
            try:
                self.work.wait(order.wait_time(IDLE_WAIT))  # (or a parked item's time)
            finally:
                self.idle -= 1

    def finish(self, item: Item, gen: Generation) -> Item | None:
        """Account for a finished item; the next event of its visit, if any, which the
        same thread sends next (keeping the visit's order). While stopping, that thread
        finds ``stop`` set and finishes it unsent (counted), as it would any other."""
        nxt = self.order.done(item)
        self.count -= 1
        self.bytes -= item.size
        if self.count == 0:
            self.done.notify_all()
        return nxt

    def refill_room(self) -> int:
        """How many events memory may take from the outbox."""
        return self._settings.queue_size - self.count

    @property
    def half_empty(self) -> bool:
        return self.count <= self._settings.queue_size // 2

    def oldest_event_at(self) -> float | None:
        """When the oldest unfinished event was made (read-only, for ``health()``)."""
        with self.lock:  # a few heads, not the whole queue: submit waits on this lock
            heads = self.order.heads()
        return min((item.event.created_at for item in heads), default=None)

    @property
    def queued(self) -> int:
        return self.count - self.order.in_flight
