"""One attempt at sending one event, and what its outcome means: the one retry policy.

Every backend sends through :class:`Attempt`. It sends the event with the client (or an
injected sender), classifies the outcome (delivered, retry this event at time T, pause the
whole pipeline until T, rejected for good, expired), and keeps the pipeline-wide breaker
(``breaker.py``) and the counters up to date. Backends only decide how to wait. The
failure table is ``verdicts.py``; a lead that expects a click first passes the click gate
(``clicks.py``).
"""

from __future__ import annotations

import threading
import time

from ..._errors import AffyAPIError
from ..._settings import Settings
from ..._wire import Event
from ..base import Sender
from ..support.counters import Counters
from ..support.logs import LogLimiter
from ..support.timings import TIMINGS, status_class
from .breaker import Breaker, RetryPolicy, retry_after_of
from .clicks import ClickGate, StatusCheck
from .hook import ErrorHook
from .refusals import say_misconfigured, say_rejected
from .transport import ClientTransport
from .verdicts import DELIVERED, EXPIRED, Outcome, Rule, Verdict, classify

__all__ = ["Attempt", "Outcome", "Rule", "Verdict", "classify"]


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
        status: StatusCheck | None = None,
    ) -> None:
        self.settings = self._settings = settings
        self.policy = policy
        self._counters = counters
        self._log = log
        self.transport = ClientTransport(settings, log, send, status)
        #: Tells the app's ``on_error`` of an event given up (call it outside any lock).
        self.gave_up = ErrorHook(settings.on_error, log)
        self.clicks = ClickGate(settings.click_wait, counters, log, self.transport.status_check)
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

    @property
    def paused_now(self) -> bool:
        """``paused`` without the lock, for a hint on the request path: a stale answer
        costs one needless wake-up, or a wait of at most an idle sender's timeout."""
        return self._breaker.paused

    # -- one attempt -------------------------------------------------------------------

    def run(self, event: Event, *, attempts: int, probe: bool, hold: bool = True) -> Outcome:
        """Send ``event`` once (``attempts`` earlier tries) and classify the outcome.
        ``hold`` False: the caller can't keep the event, so it does not wait for its click."""
        deadline = self._settings.retry_deadline
        if time.time() - event.created_at > deadline:
            self._counters.finish("dropped_expired", event.kind)
            self.end_probe(probe)
            self._log.warn(
                "expired", "gave up an event older than %.0f s", deadline, event=event
            )
            self.gave_up(event, "expired")
            return EXPIRED
        if attempts:
            self._counters.add("retried")
        try:
            if self.clicks.must_wait(event, hold=hold):
                # AFFY answered the status call: it is up. Only this visit waits.
                self._answered()
                return Outcome(Verdict.RETRY, at=time.monotonic() + self._click_backoff(attempts))
            started = time.perf_counter()  # one duration per call (affy_delivery_seconds)
            try:
                self.transport.send(event)
            except Exception as exc:
                elapsed = time.perf_counter() - started
                TIMINGS.record(event.kind, status_class(getattr(exc, "status_code", None)), elapsed)
                raise
            TIMINGS.record(event.kind, "2xx", time.perf_counter() - started)
        except Exception as exc:
            return self._failed(event, exc, attempts, probe)
        self._counters.finish("sent", event.kind)
        self.clicks.delivered(event)
        self._answered()
        return DELIVERED

    def _answered(self) -> None:
        with self._lock:
            self._breaker.success()
            self._gate.notify_all()

    def _click_backoff(self, attempts: int) -> float:
        # Never ~0 (a busy loop of status calls), never past a few seconds (the click is
        # usually a backoff away, in another worker).
        return min(5.0, max(0.2, self.policy.backoff(attempts)))

    def _failed(self, event: Event, exc: Exception, attempts: int, probe: bool) -> Outcome:
        rule = classify(exc, event, self.clicks.waited_out(event))
        self._counters.add("failed")
        if rule.verdict is Verdict.REJECTED:
            counter = rule.counter or "dropped_rejected"
            self._counters.finish(counter, event.kind)
            self._rejected(event, exc, probe)
            self.gave_up(event, counter.removeprefix("dropped_"))
            return Outcome(Verdict.REJECTED, error=exc)
        if rule.counter is not None:
            self._counters.add(rule.counter)
        if not rule.outage:  # a 404 on a lead: its click is not at AFFY yet
            self.clicks.say_waiting(event, getattr(exc, "status_code", None))
        now = time.monotonic()
        if not rule.outage:  # AFFY answered: it is up; this event alone waits
            self._answered()
            return Outcome(Verdict.RETRY, at=now + self._click_backoff(attempts), error=exc)
        at_once = rule.verdict is Verdict.PAUSE
        if at_once:
            say_misconfigured(self._log, exc, self._settings.api_url)
        retry_after = retry_after_of(exc)
        with self._lock:
            pauses = self._breaker.pauses
            self._breaker.failure(now, probe=probe, retry_after=retry_after, at_once=at_once)
            paused_until = self._breaker.paused_until
            started = self._breaker.pauses != pauses
            self._gate.notify_all()
        if started:
            self._counters.add("pauses")
            if not at_once:
                wait = paused_until - now
                self._log.warn(
                    "paused",
                    "AFFY is failing (%s); pausing delivery for %.1f s",
                    exc,
                    wait,
                    event=event,
                    status=getattr(exc, "status_code", None),
                )
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
        say_rejected(self._log, event, exc)
