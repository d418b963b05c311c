"""One attempt at sending one event, and what its outcome means: the one retry policy.

Every backend sends through :class:`Attempt`. It sends the event with the client (or an
injected sender), classifies the outcome (delivered, retry this event at time T, pause the
whole pipeline until T, rejected for good, expired), and keeps the pipeline-wide breaker
(``breaker.py``) and the counters up to date. Backends only decide how to wait.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from .._errors import AffyAPIError
from .._settings import Settings
from .._wire import Event
from .base import Sender
from .breaker import Breaker, RetryPolicy, is_retryable, retry_after_of
from .counters import Counters
from .logs import LogLimiter, logger
from .transport import ClientTransport

__all__ = ["Attempt", "Outcome", "Rule", "Verdict", "classify"]


class Verdict(enum.Enum):
    """What became of one attempt."""

    #: AFFY accepted the event: forget it.
    DELIVERED = "delivered"
    #: A passing failure: this event alone tries again at ``Outcome.at``.
    RETRY = "retry"
    #: AFFY is failing (an outage, a Retry-After): nothing goes out before ``Outcome.at``,
    #: then one probe.
    PAUSE = "pause"
    #: Refused for good (a 4xx other than 408/429, or a bug of ours): drop it.
    REJECTED = "rejected"
    #: Older than ``retry_deadline``: given up without sending.
    EXPIRED = "expired"


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    #: ``time.monotonic()`` when the event (RETRY) or the pipeline (PAUSE) may go again.
    at: float = 0.0
    error: BaseException | None = None

    @property
    def final(self) -> bool:
        """Whether the event is done with (its outbox row can go)."""
        return self.verdict in (Verdict.DELIVERED, Verdict.REJECTED, Verdict.EXPIRED)


class Rule(NamedTuple):
    """One row of the failure table: which errors, what they mean, what they count."""

    matches: Callable[[BaseException], bool] | None
    verdict: Verdict
    #: A counter to bump besides ``failed`` (which every failure bumps), if any.
    counter: str | None = None
    #: Whether the failure says AFFY is unwell (it then feeds the pipeline-wide pause), or
    #: AFFY answered and only this event must wait (it backs off alone).
    outage: bool = True


#: How a failed send is classified, first match first. A new kind of "not yet" is one
#: more row: e.g. a lead refused because AFFY has not seen its click yet would be
#: ``Rule(is_unknown_click, Verdict.RETRY, "waiting_for_click", outage=False)``.
RULES: tuple[Rule, ...] = (Rule(is_retryable, Verdict.RETRY),)
#: What a failure no rule matches means.
OTHERWISE = Rule(None, Verdict.REJECTED, "dropped_rejected")

DELIVERED = Outcome(Verdict.DELIVERED)
EXPIRED = Outcome(Verdict.EXPIRED)


def classify(exc: BaseException) -> Rule:
    """The rule a failed send falls under."""
    for rule in RULES:
        if rule.matches is not None and rule.matches(exc):
            return rule
    return OTHERWISE


class Attempt:
    """Sends events for one backend in one process; shared by its sender threads.

    ``send`` replaces the HTTP client (tests, benchmarks). The breaker has its own lock
    and condition (``wait_turn`` sleeps on it), made once and never replaced.
    """

    def __init__(
        self,
        settings: Settings,
        policy: RetryPolicy,
        counters: Counters,
        log: LogLimiter,
        send: Sender | None = None,
    ) -> None:
        self._settings = settings
        self.policy = policy
        self._counters = counters
        self._log = log
        self.transport = ClientTransport(settings, log, send)
        self._lock = threading.Lock()
        self._gate = threading.Condition(self._lock)  # senders held by a pause
        self._breaker = Breaker(policy)

    # -- turns: when may a request go out ----------------------------------------------

    def wait_turn(self, stop: threading.Event) -> bool | None:
        """Wait while the pipeline is paused. Whether this request is the probe, or None
        when ``stop`` is set first."""
        with self._lock:
            while True:
                if stop.is_set():
                    return None
                wait = self._breaker.wait_time(time.monotonic())
                if wait is None:
                    return self._breaker.admit()
                self._gate.wait(min(wait, 1.0))

    def try_turn(self) -> bool | None:
        """Like ``wait_turn`` without waiting: None while the pipeline is paused."""
        with self._lock:
            if self._breaker.wait_time(time.monotonic()) is not None:
                return None
            return self._breaker.admit()

    def end_probe(self, probe: bool) -> None:
        """A turn ended without an answer about AFFY (e.g. the event was handed over)."""
        if probe:
            with self._lock:
                self._breaker.cancel_probe()
                self._gate.notify_all()

    def wake(self) -> None:
        """Wake every sender waiting for its turn (they look at their stop event)."""
        with self._lock:
            self._gate.notify_all()

    def reset(self) -> None:
        """Forget the failures seen so far (after a shutdown)."""
        with self._lock:
            self._breaker = Breaker(self.policy)
            self._gate.notify_all()

    @property
    def paused(self) -> bool:
        with self._lock:
            return self._breaker.paused

    # -- one attempt -------------------------------------------------------------------

    def run(self, event: Event, *, attempts: int, probe: bool) -> Outcome:
        """Send ``event`` once (``attempts`` earlier tries) and classify the outcome."""
        deadline = self._settings.retry_deadline
        if time.time() - event.created_at > deadline:
            self._counters.add("dropped_expired")
            self.end_probe(probe)
            self._log.warn("expired", "gave up an event older than %.0f s", deadline)
            return EXPIRED
        if attempts:
            self._counters.add("retried")
        try:
            self.transport.send(event)
        except Exception as exc:
            return self._failed(event, exc, attempts, probe)
        self._counters.add("sent")
        with self._lock:
            self._breaker.success()
            self._gate.notify_all()
        return DELIVERED

    def _failed(self, event: Event, exc: Exception, attempts: int, probe: bool) -> Outcome:
        rule = classify(exc)
        self._counters.add("failed")
        if rule.counter is not None:
            self._counters.add(rule.counter)
        if rule.verdict is Verdict.REJECTED:
            self._rejected(event, exc, probe)
            return Outcome(Verdict.REJECTED, error=exc)
        now = time.monotonic()
        if not rule.outage:  # AFFY answered: it is up; this event alone waits
            with self._lock:
                self._breaker.success()
                self._gate.notify_all()
            return Outcome(Verdict.RETRY, at=now + self.policy.backoff(attempts), error=exc)
        retry_after = retry_after_of(exc)
        with self._lock:
            pauses = self._breaker.pauses
            self._breaker.failure(now, probe=probe, retry_after=retry_after)
            paused_until = self._breaker.paused_until
            started = self._breaker.pauses != pauses
            self._gate.notify_all()
        if started:
            self._counters.add("pauses")
            wait = paused_until - now
            self._log.warn("pause", "AFFY is failing (%s); pausing delivery for %.1f s", exc, wait)
        if paused_until > now:
            return Outcome(Verdict.PAUSE, at=paused_until, error=exc)
        # An isolated failure: this event alone backs off.
        return Outcome(Verdict.RETRY, at=now + self.policy.backoff(attempts), error=exc)

    def _rejected(self, event: Event, exc: Exception, probe: bool) -> None:
        with self._lock:
            if isinstance(exc, AffyAPIError):
                self._breaker.success()  # AFFY answered: it is up
            elif probe:
                self._breaker.cancel_probe()
            self._gate.notify_all()
        if isinstance(exc, AffyAPIError):
            reason = (type(exc).__name__, exc.status_code, exc.error, exc.message)
            if self._log.first_time(reason):
                logger.warning(
                    "affy_middleware: AFFY refused a %s event, not retrying: %s", event.kind, exc
                )
            else:
                logger.debug("affy_middleware: AFFY refused a %s event: %s", event.kind, exc)
        else:
            logger.error(
                "affy_middleware: dropped a %s event after an unexpected error",
                event.kind,
                exc_info=exc,
            )
