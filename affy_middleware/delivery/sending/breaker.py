"""Retry policy: which failures to retry, how long to wait, and the pipeline-wide pause.

A single failed request is retried after an exponential backoff with full jitter. When
several requests fail in a row (AFFY is down, or the network is), the whole pipeline pauses
instead of every event retrying on its own schedule: no request goes out until the pause
ends, then exactly one request probes AFFY; its success reopens the pipeline, its failure
doubles the pause (up to a cap). A ``Retry-After`` from AFFY always wins over a shorter wait.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..._errors import AffyAPIError, AffyNotFoundError
from ...client.bounded import AnswerTooLarge

__all__ = [
    "RetryPolicy",
    "Breaker",
    "retry_after_of",
    "is_retryable",
    "is_misconfigured",
    "is_unknown_click",
]

#: Longest ``Retry-After`` we honour (one hour); a longer one is treated as this.
MAX_RETRY_AFTER = 3600.0


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff parameters (seconds). The defaults suit a remote API."""

    #: First backoff window; attempt ``n`` waits a random time in ``[0, base * 2**n]``.
    base: float = 0.5
    #: Largest backoff window for one event and for a pipeline pause.
    cap: float = 30.0
    #: Consecutive failed requests (any event) that pause the whole pipeline.
    failure_threshold: int = 3
    #: Shortest pipeline pause, so a jittered pause of ~0 s does not become a tight loop.
    min_pause: float = 0.1
    #: Shortest pause for a wrong set-up (401/403, 3xx, an oversize answer): a person has
    #: to fix it, so probing more often only repeats the refusal (or, through a broken
    #: proxy, fills socket buffers with megabytes each time).
    config_pause: float = 2.0

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Full jitter: a uniform random wait in ``[0, min(cap, base * 2**attempt)]``."""
        window = min(self.cap, self.base * math.pow(2.0, min(attempt, 62)))
        return rand() * window


def is_retryable(exc: BaseException) -> bool:
    """Network errors, timeouts, 408, 429 and 5xx are worth another try; nothing else."""
    if isinstance(exc, AffyAPIError):
        return bool(exc.retryable)
    return False


def is_misconfigured(exc: BaseException) -> bool:
    """401/403 (the key), a 3xx (the URL) or an answer too large to be AFFY's (a broken
    proxy on the way): our set-up is wrong, not the event."""
    if isinstance(exc, AnswerTooLarge):
        return True
    if not isinstance(exc, AffyAPIError) or exc.status_code is None:
        return False
    return exc.status_code in (401, 403) or 300 <= exc.status_code < 400


def is_unknown_click(exc: BaseException) -> bool:
    """AFFY's 404 on a lead: it does not know the click (yet)."""
    return isinstance(exc, AffyNotFoundError)


def retry_after_of(exc: BaseException) -> float | None:
    value = getattr(exc, "retry_after", None)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return min(max(float(value), 0.0), MAX_RETRY_AFTER)
    return None


class Breaker:
    """The pipeline-wide pause (a circuit breaker). Not thread-safe: the attempt step calls
    it under its own lock. Times are ``time.monotonic()`` values.

    States: *closed* (send freely), *open* (nothing until ``paused_until``), *half-open*
    (the pause is over; one probe request at a time until one succeeds).
    """

    def __init__(self, policy: RetryPolicy, rand: Callable[[], float] = random.random) -> None:
        self.policy = policy
        self._rand = rand
        self.consecutive_failures = 0
        self.paused_until = 0.0
        self.half_open = False
        self.probing = False
        self.level = 0
        #: Pipeline pauses started (for stats).
        self.pauses = 0

    def wait_time(self, now: float) -> float | None:
        """Seconds to wait before a request may go out, or None to go now. While
        half-open with a probe in flight the answer is a short poll interval."""
        if now < self.paused_until:
            return self.paused_until - now
        if self.half_open and self.probing:
            return 0.5
        return None

    def admit(self) -> bool:
        """Called when a request goes out; returns True when it is the probe."""
        if self.half_open:
            self.probing = True
            return True
        return False

    def success(self) -> None:
        self.consecutive_failures = 0
        self.half_open = False
        self.probing = False
        self.level = 0

    def failure(
        self, now: float, *, probe: bool, retry_after: float | None, at_once: bool = False
    ) -> None:
        """Record a failure that keeps the event; may pause the pipeline (``at_once``:
        without waiting for ``failure_threshold``, as for a refused key or a redirect)."""
        self.consecutive_failures += 1
        if probe:
            self.probing = False
        if retry_after is not None:
            # AFFY said when to come back: nobody sends before then, then one probe.
            self._pause(now, retry_after)
        elif probe or (
            not self.half_open
            and (at_once or self.consecutive_failures >= self.policy.failure_threshold)
        ):
            # Requests that were already out when the pipeline paused fail too; only the
            # probe's failure makes the next pause longer.
            self.level += 1
            window = self.policy.backoff(self.level, self._rand)
            shortest = self.policy.config_pause if at_once else self.policy.min_pause
            self._pause(now, max(shortest, window))

    def cancel_probe(self) -> None:
        """The probe ended without an answer about AFFY (e.g. the event expired)."""
        self.probing = False

    def _pause(self, now: float, seconds: float) -> None:
        until = now + seconds
        if until > self.paused_until:
            if now >= self.paused_until:
                self.pauses += 1
            self.paused_until = until
        self.half_open = True

    @property
    def paused(self) -> bool:
        return self.half_open or time.monotonic() < self.paused_until
