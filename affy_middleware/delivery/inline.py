"""The inline backend (``AFFY_DELIVERY=sync``): ``submit`` sends before it returns.

For scripts and serverless functions, where no background thread may outlive the call.
A few bounded tries through the same attempt step as the thread backend; with an outbox,
an event that could not be sent stays there for a later process.
"""

from __future__ import annotations

import threading
import time

from .._process import PerProcess
from .._settings import Settings
from .._wire import Event
from .base import Backend, Sender, State
from .outbox import DEFAULT_LEASE
from .outbox.guarded import GuardedOutbox
from .sending.attempt import Attempt, Verdict
from .sending.breaker import RetryPolicy
from .support.counters import Counters, with_gauges
from .support.logs import LogLimiter, logger

__all__ = ["InlineBackend"]

#: Tries per event, within ``max(timeout, flush_timeout)`` seconds in all.
MAX_TRIES = 3


class _Here:
    """What one process has for an inline backend: its counters, attempt step (client,
    breaker) and outbox handle. A forked child makes its own on first use (by pid, so
    also under uWSGI, which runs no at-fork hook); the parent's stay alive, unused."""

    __slots__ = ("log", "counters", "attempt", "durable")

    def __init__(self, backend: InlineBackend) -> None:
        self.log = LogLimiter()  # its lock too: a parent's thread may hold it at fork
        self.counters = Counters()
        settings = backend.settings
        self.attempt = Attempt(settings, backend.policy, self.counters, self.log, backend.sender)
        self.durable = GuardedOutbox(settings, self.counters, self.log, backend.lease)


class InlineBackend(Backend):
    """Sends each event in the calling thread; never raises. ``send``, ``retry_policy``
    and ``outbox_lease`` as for :class:`ThreadBackend`."""

    blocks = True

    def __init__(
        self,
        settings: Settings,
        *,
        send: Sender | None = None,
        retry_policy: RetryPolicy | None = None,
        outbox_lease: float = DEFAULT_LEASE,
    ) -> None:
        self.settings = settings
        self.sender = send
        self.policy = retry_policy or RetryPolicy()
        self.lease = outbox_lease
        self.state = State.IDLE
        self._stop = threading.Event()  # interrupts a backoff at exit
        self._here: PerProcess[_Here] = PerProcess(lambda parent: _Here(self))

    def submit(self, event: Event) -> bool:
        """Send now, a few bounded tries; True when AFFY accepted the event."""
        try:
            if self.state is State.CLOSED:
                return False
            return self._send_now(self._here.get(), event)
        except Exception:  # never into the host app
            logger.debug("affy_middleware: inline delivery failed", exc_info=True)
            return False

    def _send_now(self, here: _Here, event: Event) -> bool:
        durable, attempt, counters = here.durable, here.attempt, here.counters
        stored = durable.location is not None and durable.put(event, claimed=True) is not None
        counters.add("enqueued")
        settings = self.settings
        budget_end = time.monotonic() + max(settings.timeout, settings.flush_timeout)
        for tries in range(MAX_TRIES):
            probe = attempt.try_turn()
            if probe is None:
                break  # AFFY is known to be down: don't make this request wait on it
            # Without an outbox nothing keeps the event after this call: the last try
            # sends a lead even if its click is not at AFFY yet (counted), not drops it.
            last = tries == MAX_TRIES - 1 or time.monotonic() + settings.timeout >= budget_end
            outcome = attempt.run(event, attempts=tries, probe=probe, hold=stored or not last)
            if outcome.final:
                if stored:
                    durable.finish(event, outcome)
                return outcome.verdict is Verdict.DELIVERED
            if outcome.at >= budget_end:
                break
            self._stop.wait(max(0.0, outcome.at - time.monotonic()))
        if stored:
            durable.release([event.event_id])  # for a later process to send
        else:
            counters.finish("dropped_unsent", event.kind)
            attempt.gave_up(event, "unsent")
        here.log.warn(
            "unsent", "could not deliver an event inline (AFFY unreachable)", event=event
        )
        return False

    def close(
        self, timeout: float | None = None, *, final: bool = False, handover: bool = False
    ) -> None:
        here = self._here.get()
        attempt = here.attempt
        if final:
            self.state = State.CLOSED
            self._stop.set()
            here.durable.close()
            attempt.transport.close()
        attempt.reset()

    def stats(self) -> dict[str, int]:
        here = self._here.get()
        return with_gauges(
            here.counters.snapshot(),
            queued=0,
            in_flight=0,
            paused=here.attempt.paused,
            outbox=here.durable.states(),
        )

    def before_fork(self) -> None:
        self._here.get().attempt.transport.fence.before_fork()

    def after_fork_in_parent(self) -> None:
        self._here.get().attempt.transport.fence.after_fork_in_parent()

    def after_fork_in_child(self) -> None:
        """A fresh state: the parent's client and outbox handle stay alive, unused."""
        self._here.get()
