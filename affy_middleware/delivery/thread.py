"""The thread backend (``AFFY_DELIVERY=thread``, the default): a bounded in-memory queue
drained by a small pool of sender threads, with the outbox when one is configured.

The request thread only runs :meth:`ThreadBackend.submit`: one short lock and a deque
append (with an outbox, one write before it returns). Memory is then a cache
of the outbox: when it is full, events wait in the outbox only and the lease keeper moves
them into memory as it empties.
"""

from __future__ import annotations

import threading
import time

from .._process import PerProcess
from .._settings import Settings
from .._wire import Event
from .base import Backend, Sender, State
from .outbox import DEFAULT_LEASE, OutboxError, app_rows
from .sending.breaker import RetryPolicy
from .support.counters import with_gauges
from .support.logs import logger
from .threaded.process import ProcessDelivery
from .threaded.queue import Item, estimate_size

__all__ = ["ThreadBackend"]

_CLOSED = State.CLOSED
_STOPPED = State.STOPPED


#: Seconds between two tries, in ``flush``, to write what this process owes the outbox.
OWED_RETRY = 0.1

class ThreadBackend(Backend):
    """Delivers events for one ``Settings`` from background threads.

    ``send`` replaces the HTTP call (a callable taking an ``Event`` and raising the
    ``AffyAPIError`` family), ``retry_policy`` the backoff parameters and ``outbox_lease``
    the outbox's lease; all three are for tests and benchmarks::

        backend = ThreadBackend(Settings(client_id=42))
        backend.submit(event)     # True: accepted for delivery
        backend.flush(timeout=2)  # True: everything accepted was delivered

    Everything that belongs to one process (queue, locks, threads, client, outbox handle,
    breaker, counters) is a :class:`ProcessDelivery`, found by pid: a forked child makes its own
    on first use, whether or not the at-fork hooks ran (uWSGI runs none).
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
        self.policy = retry_policy or RetryPolicy()

        def make(parent: ProcessDelivery | None) -> ProcessDelivery:
            return ProcessDelivery(settings, self.policy, send, outbox_lease)

        self._here: PerProcess[ProcessDelivery] = PerProcess(make)

    def machinery(self) -> ProcessDelivery:
        """This process's machinery (queue, relay, outbox handle, threads): the seam for
        tests and benchmarks that drive one step by hand."""
        return self._here.get()

    @property
    def state(self) -> State:
        """This process's lifecycle state (a forked child starts IDLE)."""
        return self._here.get().state

    # -- the request thread's side -----------------------------------------------------

    def submit(self, event: Event) -> bool:
        try:
            p = self._here.get()
            if p.state is _CLOSED:
                return False
            if p.state is _STOPPED:  # (after a hand-over: the stop is lifted)
                p.restart()
            size = estimate_size(event)
            if p.stored:
                accepted = p.relay.submit(event, size)
                if not accepted:  # neither memory nor the outbox took it: a drop
                    p.attempt.gave_up(event, "queue_full")
                if p.threads.keeper_ended():
                    p.start()  # it stopped for a shutdown that raced with it: restart
                return accepted
            queue, settings = p.queue, self.settings
            with queue.lock:
                # An idle sender could not send during a pause: don't wake it for nothing
                # on every submit (it looks again within IDLE_WAIT, or at a parked retry's
                # time, and the sender ending the pause takes more).
                wake = queue.idle > 0 and not p.attempt.paused_now  # (the pause read only then)
                accepted = queue.offer(Item(event, size, False), wake=wake)
                if accepted:
                    p.counters.values["enqueued"] += 1  # (the counters share the lock)
                    start = queue.first_sender()
                else:
                    p.counters.finish_locked("dropped_queue_full", event.kind)
            if accepted:
                if start:
                    p.start_sender()
                return True
            p.warn_if_starved()
            p.log.warn(
                "queue_full",
                "queue is full (%s events / %s bytes)",
                settings.queue_size,
                settings.queue_bytes,
                event=event,
            )
            p.attempt.gave_up(event, "queue_full")  # on the caller's thread
            return False
        except Exception:  # never into the host app
            logger.debug("affy_middleware: enqueue failed", exc_info=True)
            return False

    # -- threads -----------------------------------------------------------------------

    def start(self) -> None:
        """Start delivering now rather than at the first event: replays the outbox."""
        self._here.get().start()

    def app_outbox(self) -> app_rows.Address | None:
        return app_rows.address(self.settings)

    def rows_written(self) -> None:
        p = self._here.get()
        if p.stored:
            p.start()  # the keeper, if it is not running yet
            p.threads.wake_keeper()

    @property
    def threads(self) -> list[threading.Thread]:
        """This process's threads (senders, the lease keeper) started and not yet found
        ended by a shutdown."""
        return self._here.get().threads.started

    # -- flush, close, stats -----------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything accepted was delivered (or dropped); True if it was.
        ``None`` means ``settings.flush_timeout``; never waits longer than the timeout."""
        limit = self.settings.flush_timeout if timeout is None else max(0.0, timeout)
        end = time.monotonic() + limit
        p = self._here.get()
        stored = p.stored
        if stored:
            p.start()
        p.resume()
        p.warn_if_starved()
        queue = p.queue
        while True:
            with queue.lock:
                while queue.count > 0 or queue.overflow:
                    remaining = end - time.monotonic()
                    if remaining <= 0:
                        return False
                    if queue.overflow:
                        p.threads.wake_keeper()
                    queue.done.wait(min(remaining, 0.25) if queue.overflow else remaining)
            if not stored or p.durable.wait_open(end - time.monotonic()) is None:
                return True
            try:  # memory is empty: is anything left in the outbox that we may take?
                claimed = p.relay.refill()  # (writes what is owed first)
            except OutboxError:
                # Unreachable: what is in it waits for whoever reaches it first; but a row
                # whose fate this process owes (delivered, not yet deleted) is ours to end.
                if not p.durable.owes():
                    return True
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return False
                time.sleep(min(OWED_RETRY, remaining))
                continue
            if claimed == 0:
                with queue.lock:
                    if queue.count == 0 and not queue.overflow:
                        return True
            p.resume()

    def close(
        self, timeout: float | None = None, *, final: bool = False, handover: bool = False
    ) -> None:
        """Flush for up to ``timeout`` seconds, then stop the threads (bounded). Events
        still queued are kept in the outbox (given back to the other processes at once
        with ``final`` or ``handover``, else kept for this one's next start), the others
        counted as ``dropped_shutdown``. A later ``submit`` starts again (unless
        ``final``). Safe from any thread, at any time, while other threads submit and
        flush."""
        p = self._here.get()
        if final:
            with p.queue.lock:
                p.state = State.CLOSED
        limit = self.settings.flush_timeout if timeout is None else max(0.0, timeout)
        end = time.monotonic() + limit
        # Keep a little of the budget for the threads to stop and hand back their events.
        self.flush(limit - min(0.2, limit / 5))
        give_back = final or handover
        _, alive = p.stop(limit, end, final=final, give_back=give_back)
        if give_back:  # what this process did not finish, another sends at once
            p.durable.close()
        if final and not alive:
            p.attempt.transport.close()

    def stats(self) -> dict[str, int]:
        p = self._here.get()
        queue = p.queue
        with queue.lock:
            queued, in_flight = queue.queued, queue.in_flight
        return with_gauges(
            p.counters.snapshot(),
            queued=queued,
            in_flight=in_flight,
            paused=p.attempt.paused,
            outbox=p.durable.states(),
        )

    def oldest_event_at(self) -> float | None:
        return self._here.get().queue.oldest_event_at()

    # -- fork: the hooks are a fast path; the pid check in ``_here`` is the rule --------

    def before_fork(self) -> None:
        self._here.get().attempt.transport.fence.before_fork()

    def after_fork_in_parent(self) -> None:
        self._here.get().attempt.transport.fence.after_fork_in_parent()

    def after_fork_in_child(self) -> None:
        """Fresh queue, locks, threads, client and outbox handle. What the parent had
        queued stays the parent's business and is not sent from here."""
        self._here.get()
