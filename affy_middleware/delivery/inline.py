"""The inline backend (``AFFY_DELIVERY=sync``): ``submit`` sends before it returns.

For scripts and serverless functions, where no background thread may outlive the call.
A few bounded tries through the same attempt step as the thread backend; with an outbox,
an event that could not be sent stays there for a later process.
"""

from __future__ import annotations

import os
import threading
import time

from .._settings import Settings
from .._wire import Event
from .attempt import Attempt, Verdict
from .base import Backend, Sender, State
from .breaker import RetryPolicy
from .counters import Counters, with_gauges
from .durable import Durable
from .fork import inherit
from .logs import LogLimiter, logger
from .outbox import DEFAULT_LEASE

__all__ = ["InlineBackend"]

#: Tries per event, within ``max(timeout, flush_timeout)`` seconds in all.
MAX_TRIES = 3


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
        self._send = send
        self.policy = retry_policy or RetryPolicy()
        self._lease = outbox_lease
        self.state = State.IDLE
        self._stop = threading.Event()  # interrupts a backoff at exit
        self._fresh()

    def _fresh(self) -> None:
        self._pid = os.getpid()
        self._log = LogLimiter()  # its lock too: a parent's thread may hold it at fork
        self._counters = Counters()
        self._attempt = Attempt(self.settings, self.policy, self._counters, self._log, self._send)
        self._durable = Durable(self.settings, self._counters, self._log, self._lease)

    def submit(self, event: Event) -> bool:
        """Send now, a few bounded tries; True when AFFY accepted the event."""
        try:
            if self.state is State.CLOSED:
                return False
            if self._pid != os.getpid():
                self.after_fork_in_child()
            return self._send_now(event)
        except Exception:  # never into the host app
            logger.debug("affy_middleware: inline delivery failed", exc_info=True)
            return False

    def _send_now(self, event: Event) -> bool:
        durable, attempt = self._durable, self._attempt
        stored = durable.location is not None and durable.put(event, claimed=True) is not None
        self._counters.add("enqueued")
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
                    durable.finish(event.event_id, outcome)
                return outcome.verdict is Verdict.DELIVERED
            if outcome.at >= budget_end:
                break
            self._stop.wait(max(0.0, outcome.at - time.monotonic()))
        if stored:
            durable.release([event.event_id])  # for a later process to send
        else:
            self._counters.finish("dropped_unsent", event.kind)
            self._attempt.gave_up(event, "unsent")
        self._log.warn(
            "unsent", "could not deliver an event inline (AFFY unreachable)", event=event
        )
        return False

    def close(self, timeout: float | None = None, *, final: bool = False) -> None:
        if final:
            self.state = State.CLOSED
            self._stop.set()
            self._attempt.transport.close()
        self._attempt.reset()

    def stats(self) -> dict[str, int]:
        spooled = self._durable.count() if self._pid == os.getpid() else 0
        counters = self._counters.snapshot()
        return with_gauges(
            counters, queued=0, in_flight=0, paused=self._attempt.paused, spooled=spooled
        )

    def before_fork(self) -> None:
        self._attempt.transport.fence.before_fork()

    def after_fork_in_parent(self) -> None:
        self._attempt.transport.fence.after_fork_in_parent()

    def after_fork_in_child(self) -> None:
        inherit(self._attempt.transport.client, self._durable.outbox)
        self._fresh()
