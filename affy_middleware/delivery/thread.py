"""The thread backend (``AFFY_DELIVERY=thread``, the default): a bounded in-memory queue
drained by a small pool of sender threads, with the outbox when one is configured.

The request thread only runs :meth:`ThreadBackend.submit`: one short lock and a deque
append (with an outbox, one write before it returns). Memory is then a cache
of the outbox: when it is full, events wait in the outbox only and the lease keeper moves
them into memory as it empties.
"""

from __future__ import annotations

import os
import threading
import time

from .._settings import Settings
from .._wire import Event
from .attempt import Attempt
from .base import Backend, Sender, State
from .breaker import RetryPolicy
from .counters import Counters, with_gauges
from .durable import Durable
from .fork import inherit
from .logs import LogLimiter, logger
from .outbox import DEFAULT_LEASE, OutboxError
from .queue import Item, MemoryQueue, estimate_size
from .relay import Relay
from .senders import SenderPool

__all__ = ["ThreadBackend"]

_CLOSED = State.CLOSED


class ThreadBackend(Backend):
    """Delivers events for one ``Settings`` from background threads.

    ``send`` replaces the HTTP call (a callable taking an ``Event`` and raising the
    ``AffyAPIError`` family), ``retry_policy`` the backoff parameters and ``outbox_lease``
    the outbox's lease; all three are for tests and benchmarks::

        backend = ThreadBackend(Settings(client_id=42))
        backend.submit(event)     # True: accepted for delivery
        backend.flush(timeout=2)  # True: everything accepted was delivered
    """

    blocks = False

    def __init__(
        self,
        settings: Settings,
        *,
        send: Sender | None = None,
        retry_policy: RetryPolicy | None = None,
        outbox_lease: float = DEFAULT_LEASE,
    ) -> None:
        self.settings = settings
        self._send = send
        self.policy = retry_policy or RetryPolicy()
        self._lease = outbox_lease
        self.state = State.IDLE
        self._fresh()

    def _fresh(self) -> None:
        """Everything that belongs to one process: at creation, and in a forked child
        (where no other thread exists, so replacing locks is safe)."""
        self._pid = os.getpid()
        self._log = LogLimiter()  # its lock too: a parent's thread may hold it at fork
        # One lock for the queue and the counters: submit counts under the lock it holds.
        self._counters = Counters()
        self._counts = self._counters.values
        self._queue = MemoryQueue(self.settings, self._counters.lock)
        self._attempt = Attempt(self.settings, self.policy, self._counters, self._log, self._send)
        self._durable = Durable(self.settings, self._counters, self._log, self._lease)
        self._stored = self._durable.location is not None
        self._relay = Relay(self._queue, self._durable, self._counters, self._start_sender)
        self._pool = SenderPool(
            self._queue, self._attempt, self._durable, self._counters, Relay.wake
        )

    # -- the request thread's side -----------------------------------------------------

    def submit(self, event: Event) -> bool:
        try:
            if self.state is _CLOSED:
                return False
            if self._pid != os.getpid():  # forked without at-fork hooks (uWSGI)
                self.after_fork_in_child()
            size = estimate_size(event)
            if self._stored:
                return self._relay.submit(event, size)
            queue, settings = self._queue, self.settings
            with queue.lock:
                if queue.count >= settings.queue_size or queue.bytes + size > settings.queue_bytes:
                    self._counts["dropped_queue_full"] += 1
                    accepted = start = False
                else:  # MemoryQueue.push, spelled out (docs/benchmarks/delivery.md)
                    queue.order.ready.append(Item(event, size, False))
                    queue.count += 1
                    queue.bytes += size
                    self._counts["enqueued"] += 1
                    if queue.idle:
                        queue.work.notify()
                    accepted = True
                    start = queue.senders == 0
                    if start:
                        queue.senders = 1
            if accepted:
                if start:
                    self._start_sender()
                return True
            self._log.warn(
                "queue_full",
                "queue is full (%s events / %s bytes)",
                settings.queue_size,
                settings.queue_bytes,
            )
            return False
        except Exception:  # never into the host app
            logger.debug("affy_middleware: enqueue failed", exc_info=True)
            return False

    # -- threads -----------------------------------------------------------------------

    def start(self) -> None:
        """Start delivering now rather than at the first event: replays the outbox."""
        if self.state is State.CLOSED:
            return
        if self._pid != os.getpid():
            self.after_fork_in_child()
        if self._stored:  # the keeper opens the outbox, off the request path
            self.state = State.RUNNING
            self._relay.start_keeper()

    def _start_sender(self) -> None:
        if self.state is not _CLOSED:
            self.state = State.RUNNING
        self._pool.start(self._queue.gen)

    @property
    def threads(self) -> list[threading.Thread]:
        """The threads started since the last ``close`` (senders, the lease keeper)."""
        return self._queue.gen.threads

    # -- flush, close, stats -----------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything accepted was delivered (or dropped); True if it was.
        ``None`` means ``settings.flush_timeout``; never waits longer than the timeout."""
        if self._pid != os.getpid():
            return True
        limit = self.settings.flush_timeout if timeout is None else max(0.0, timeout)
        end = time.monotonic() + limit
        stored = self._stored
        if stored:
            self.start()
        queue = self._queue
        while True:
            with queue.lock:
                while queue.count > 0 or queue.overflow:
                    remaining = end - time.monotonic()
                    if remaining <= 0:
                        return False
                    if queue.overflow:
                        Relay.wake(queue.gen)
                    queue.done.wait(min(remaining, 0.25) if queue.overflow else remaining)
            if not stored or self._durable.wait_open(end - time.monotonic()) is None:
                return True
            try:  # memory is empty: is anything left in the outbox that we may take?
                claimed = self._relay.refill(queue.gen)
            except OutboxError:
                return True
            if claimed == 0:
                with queue.lock:
                    if queue.count == 0 and not queue.overflow:
                        return True

    def close(self, timeout: float | None = None, *, final: bool = False) -> None:
        """Flush for up to ``timeout`` seconds, then stop the threads (bounded). Events
        still queued are kept in the outbox for the next process, else counted as
        ``dropped_shutdown``. A later ``submit`` starts again (unless ``final``)."""
        if final:
            self.state = State.CLOSED
        if self._pid != os.getpid():
            self.after_fork_in_child()
            return
        limit = self.settings.flush_timeout if timeout is None else max(0.0, timeout)
        end = time.monotonic() + limit
        # Keep a little of the budget for the threads to stop and hand back their events.
        self.flush(limit - min(0.2, limit / 5))
        queue = self._queue
        with queue.lock:
            gen = queue.gen
            gen.stop.set()
            Relay.wake(gen)
            queue.work.notify_all()
        self._attempt.wake()
        for thread in list(gen.threads):
            thread.join(max(0.0, end - time.monotonic()))
        with queue.lock:
            left, in_flight = queue.order.waiting(), queue.order.out()
            alive = any(t.is_alive() for t in gen.threads)
            queue.clear()  # the same lock and conditions: other threads may wait on them
        self._attempt.reset()
        if self.state is not State.CLOSED:
            self.state = State.STOPPED
        self._durable.release(item.event.event_id for item in left if item.stored)
        if alive:  # a thread is still in a request: its event is not ours to count
            in_flight = []
        self._durable.release(item.event.event_id for item in in_flight if item.stored)
        lost = sum(not item.stored for item in left + in_flight)
        if lost:
            self._counters.add("dropped_shutdown", lost)
            logger.warning(
                "affy_middleware: %d event(s) not delivered at shutdown (AFFY unreachable "
                "within %.1f s); set AFFY_SPOOL_PATH to keep them for the next start",
                lost,
                limit,
            )
        if final and not alive:
            self._attempt.transport.close()

    def stats(self) -> dict[str, int]:
        queue = self._queue
        with queue.lock:
            queued, in_flight = queue.queued, queue.order.in_flight
        spooled = self._durable.count() if self._pid == os.getpid() else 0
        return with_gauges(
            self._counters.snapshot(),
            queued=queued,
            in_flight=in_flight,
            paused=self._attempt.paused,
            spooled=spooled,
        )

    def oldest_event_at(self) -> float | None:
        return self._queue.oldest_event_at()

    # -- fork --------------------------------------------------------------------------

    def before_fork(self) -> None:
        self._attempt.transport.fence.before_fork()

    def after_fork_in_parent(self) -> None:
        self._attempt.transport.fence.after_fork_in_parent()

    def after_fork_in_child(self) -> None:
        """Fresh queue, locks, threads, client and outbox handle. What the parent had
        queued stays the parent's business and is not sent from here."""
        inherit(self._attempt.transport.client, self._durable.outbox)
        self._queue.gen.stop.set()  # (no thread survives a fork; for the pid check's sake)
        self._fresh()
        if self.state is State.RUNNING:
            self.state = State.IDLE
