"""What one process has for one thread backend: its queue, threads, client, outbox handle,
counters, breaker and log throttles, and its lifecycle. A forked child makes its own
(``ThreadBackend`` finds it by pid); nothing in here is ever replaced while in use.

Shutdown moves RUNNING -> STOPPING -> STOPPED under the queue's one lock: it sets the
threads' ``stop`` (``Threads``, in ``threads.py``), joins them (bounded), takes out what
no thread holds, and clears ``stop`` again. A thread that outlives the join keeps its item
and finishes it itself; every item is counted once, by whoever finishes it.
"""

from __future__ import annotations

import time

from ..._settings import Settings
from ..base import Sender, State
from ..outbox.guarded import GuardedOutbox
from ..sending.attempt import Attempt
from ..sending.breaker import RetryPolicy
from ..support.counters import Counters
from ..support.logs import LogLimiter, log_fields, logger
from .queue import MemoryQueue
from .relay import Relay
from .senders import SenderPool
from .threads import Threads

__all__ = ["ProcessDelivery", "STARVED_AFTER"]

#: Seconds a started sender thread may go without ever running before we say so.
STARVED_AFTER = 5.0
#: The states a new thread moves to RUNNING (not while stopping, never once closed).
_STARTABLE = (State.IDLE, State.STOPPED)


class ProcessDelivery:
    """One process's delivery machinery for one ``ThreadBackend``."""

    def __init__(
        self, settings: Settings, policy: RetryPolicy, send: Sender | None, lease: float
    ) -> None:
        self.settings = settings
        self.state = State.IDLE  # changed under queue.lock
        self.log = LogLimiter()
        # One lock for the queue and the counters: submit counts under the lock it holds.
        self.counters = Counters()
        self.queue = MemoryQueue(settings, self.counters.lock)
        self.threads = Threads()
        self.attempt = Attempt(settings, policy, self.counters, self.log, send)
        self.durable = GuardedOutbox(settings, self.counters, self.log, lease)
        self.stored = self.durable.location is not None
        self.relay = Relay(
            self.queue, self.threads, self.durable, self.counters, self.start_sender
        )
        self.pool = SenderPool(
            self.queue, self.threads, self.attempt, self.durable, self.counters
        )
        self._starved_warned = False

    def start_sender(self) -> None:
        """Start one sender thread (counted in ``queue.senders`` already)."""
        queue = self.queue
        with queue.lock:
            if self.state in _STARTABLE:
                self.state = State.RUNNING
            queue.sender_starting()
        self.pool.start()

    def restart(self) -> None:
        """After a hand-over (``stop(give_back=True)``), the process goes on: a new event,
        a flush. Lift the stop the hand-over left set, so that threads may run again."""
        with self.queue.lock:
            if self.state is State.STOPPED and self.threads.stop.is_set():
                self.threads.stop.clear()
                self.state = State.IDLE

    def start(self) -> None:
        """Start delivering now rather than at the first event: replays the outbox."""
        if self.state is State.CLOSED:
            return
        self.restart()
        queue = self.queue
        with queue.lock:
            self.threads.forget_ended_keeper()  # it saw a shutdown's stop: a new one may start
        if self.stored:  # the keeper opens the outbox, off the request path
            with queue.lock:
                if self.state in _STARTABLE:
                    self.state = State.RUNNING
            self.relay.start_keeper()

    def resume(self) -> None:
        """Start a sender if events wait in memory and none runs (events queued while
        a shutdown stopped the threads, or kept there by it)."""
        self.restart()
        queue = self.queue
        with queue.lock:
            start = queue.count > 0 and not self.threads.stop.is_set() and queue.first_sender()
        if start:
            self.start_sender()

    def warn_if_starved(self) -> None:
        """Say so, once, when a sender thread started a while ago has never run: the
        server does not let Python threads run (uWSGI without threads, on some builds)."""
        queue = self.queue
        if self._starved_warned or queue.ran or not queue.started_at or not queue.senders:
            return
        waited = time.monotonic() - queue.started_at
        if waited < STARVED_AFTER or queue.ran:
            return
        self._starved_warned = True
        logger.warning(
            "affy_middleware: the delivery thread started %.0f s ago has not run yet, so "
            "%d event(s) wait in memory. The server does not let Python threads run "
            "(uWSGI: start it with --enable-threads), or set AFFY_DELIVERY=sync.",
            waited,
            queue.count,
            extra=log_fields(reason="thread_starved"),
        )

    def stop(
        self, limit: float, end: float, *, final: bool, give_back: bool | None = None
    ) -> tuple[int, bool]:
        """Stop the threads (bounded by ``end``) and take out what no thread holds:
        outbox-backed events are given back to the outbox with ``give_back`` (default:
        ``final``; kept in memory for the next start otherwise), the others counted
        ``dropped_shutdown``. Returns how many were dropped and whether a thread is still
        running."""
        give_back = final if give_back is None else give_back
        queue, threads = self.queue, self.threads
        with queue.lock:
            if self.state is not State.CLOSED:
                self.state = State.STOPPING
            threads.stop.set()
            threads.wake_keeper()
            queue.wake_senders()
        self.attempt.wake()
        threads.join(end)
        with queue.lock:
            left = queue.sweep(keep_stored=not give_back)
            alive = threads.reap()
            if give_back and not final:
                # Handed over: threads still running must not claim rows again (the
                # keeper would take back what was just given); ``restart`` lifts it.
                self.state = State.STOPPED
            elif not final:  # a later submit starts again; threads still running go on
                threads.stop.clear()
                self.state = State.RUNNING if queue.senders else State.STOPPED
        if not alive:
            self.attempt.reset()
        self.durable.release(item.event.event_id for item in left if item.stored)
        lost = sum(not item.stored for item in left)
        if lost:
            with self.counters.lock:
                for item in left:
                    if not item.stored:
                        self.counters.finish_locked("dropped_shutdown", item.event.kind)
            logger.warning(
                "affy_middleware: %d event(s) not delivered at shutdown (AFFY unreachable "
                "within %.1f s); set AFFY_OUTBOX_URL to keep them for the next start",
                lost,
                limit,
                extra=log_fields(reason="shutdown"),
            )
            for item in left:
                if not item.stored:
                    self.attempt.gave_up(item.event, "shutdown")
        return lost, alive
