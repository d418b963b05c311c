"""The thread backend's memory: a bounded queue in visit order, and its sender count.

Bounded by count and by an estimate of bytes. Everything here runs under ``lock`` (one
per process, never replaced: threads may wait on its conditions); the threads themselves
live in ``senders.py`` and ``threads.py``. The queue keeps its own numbers: other modules
call its methods and never set its attributes. Nothing is ever reset while threads run:
``count`` and ``senders`` go down only when their own item or thread ends, so they never
go negative, and shutdown takes out only what no thread holds (:meth:`MemoryQueue.sweep`).
"""

from __future__ import annotations

import threading
import time

from ..._settings import Settings
from ..._wire import Event
from .ordering import VisitOrder

__all__ = ["Item", "MemoryQueue", "estimate_size"]

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
    """An event in memory: its size estimate, whether its outbox row is ours, its tries,
    and whether AFFY gave its final answer (``stored`` and ``answered`` change under the
    queue's lock: a late write of its row and its delivery may cross)."""

    __slots__ = ("event", "size", "stored", "attempts", "answered")

    def __init__(self, event: Event, size: int, stored: bool) -> None:
        self.event = event
        self.size = size
        self.stored = stored
        self.attempts = 0
        self.answered = False


def _order_key(item: Item) -> str | None:
    return item.event.order_key


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

    def offer(self, item: Item, *, wake: bool = True) -> bool:
        """Queue and count an item if memory has room; whether it had. The request path
        without an outbox (so never ``overflow``): one call under the lock. ``wake`` False
        leaves idle senders be (they could not send during a pause; they look again within
        ``IDLE_WAIT``, or at a parked retry's time)."""
        size = item.size
        settings = self._settings
        if self.count >= settings.queue_size or self.bytes + size > settings.queue_bytes:
            return False
        self.order.ready.append(item)  # (VisitOrder.push, spelled out: the request path)
        self.count += 1
        self.bytes += size
        if wake and self.idle:
            self.work.notify()
        return True

    def reserve(self, size: int) -> bool:
        """Count a place for an event of ``size`` before its (slower) outbox write, if
        memory has room and no newer events wait in the outbox (``overflow``); whether it
        did. The place is then filled (:meth:`push` ``counted``) or given back
        (:meth:`release`)."""
        if self.overflow or not self.has_room(size):
            return False
        self.count += 1
        self.bytes += size
        return True

    def release(self, size: int) -> None:
        """Give back a place :meth:`reserve` counted and no item filled."""
        self.count -= 1
        self.bytes -= size
        if self.count == 0:
            self.done.notify_all()

    def push(self, item: Item, *, counted: bool = False) -> None:
        """Queue an item (``counted``: its place was reserved already)."""
        self.order.push(item)
        if not counted:
            self.count += 1
            self.bytes += item.size
        if self.idle:
            self.work.notify()

    def set_overflow(self, overflow: bool) -> None:
        """Whether newer events wait in the outbox only (memory takes none until it is
        clear again: the keeper brings them in, oldest first)."""
        self.overflow = overflow

    def first_sender(self) -> bool:
        """Whether a sender must be started (counted now) for what was just queued."""
        if self.senders == 0:
            self.senders = 1
            return True
        return False

    def sender_starting(self) -> None:
        """A sender thread (counted already) is about to start: remember when the first
        one did, for :attr:`started_at`."""
        if not self.started_at:
            self.started_at = time.monotonic()

    def sender_ended(self) -> None:
        """A sender thread counted in ``senders`` ended (or could not be started)."""
        self.senders -= 1

    def take(self, stop: threading.Event) -> tuple[Item | None, int]:
        """The next event whose visit has nothing in flight (waiting for one), and how
        many sender threads to add (counted already: more waiting than idle threads, or a
        spare). None once ``stop`` is set."""
        self.ran = True
        while True:
            order = self.order  # (a shutdown's sweep may have replaced it meanwhile)
            if stop.is_set():
                return None, 0
            item = order.take()
            if item is not None:
                # More waiting than idle threads: grow the pool, up to max_in_flight.
                most = self._settings.max_in_flight
                grow = min(len(order.ready) - self.idle, most - self.senders)
                if grow <= 0 and self.idle == 0:
                    # No sender left waiting: keep a spare (up to max_in_flight), so that
                    # events submitted while this one is slow or stuck get a thread at once.
                    grow = int(self.senders < most)
                if grow > 0:
                    self.senders += grow
                return item, max(grow, 0)
            self.idle += 1
            try:
                self.work.wait(order.wait_time(IDLE_WAIT))  # (or a parked item's time)
            finally:
                self.idle -= 1

    def park(self, item: Item, at: float) -> None:
        """Set an item in flight aside until ``at`` (a sender takes it again then)."""
        self.order.park(item, at)
        self.work.notify()  # an idle sender may have to wake earlier now

    def finish(self, item: Item) -> Item | None:
        """Account for a finished item; the next event of its visit, if any, which the
        same thread sends next (keeping the visit's order). While stopping, that thread
        finds ``stop`` set and finishes it unsent (counted), as it would any other."""
        nxt = self.order.done(item)
        self.count -= 1
        self.bytes -= item.size
        if self.count == 0:
            self.done.notify_all()
        return nxt

    def wake_senders(self) -> None:
        """Wake every idle sender (a shutdown: they find ``stop`` set)."""
        self.work.notify_all()

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

    def sending(self, item: Item) -> bool:
        """Whether a sender has ``item`` now (under ``lock``)."""
        return self.order.is_out(item)

    def unstored(self) -> list[Item]:
        """The unfinished items whose outbox row is not written (in memory only)."""
        order = self.order
        return [item for item in order.waiting() + order.out() if not item.stored]

    @property
    def queued(self) -> int:
        return self.count - self.order.in_flight

    @property
    def in_flight(self) -> int:
        return self.order.in_flight
