"""The lease keeper: one thread per process that keeps the outbox's promises.

It opens the outbox (off the request path, retried with backoff while it cannot be
opened, e.g. locked by another process), renews this process's leases (every quarter of
a lease) and, about once a second or when woken, asks the backend to take rows over: left
by an earlier process at start-up, written to the outbox only while memory was full or
behind an earlier row of their visit, or held by a process that died. It never ends
while the backend runs: an error in one round is logged (at a limited rate), and the next
round comes after a backoff.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..support.logs import LOG_INTERVAL, log_fields, logger
from . import Outbox, OutboxError

__all__ = ["CLAIM_INTERVAL", "MAX_BACKOFF", "LeaseKeeper"]

#: Seconds between two looks at the outbox for rows to take over.
CLAIM_INTERVAL = 1.0
#: The longest wait after failures in a row (opening, or a round that raised).
MAX_BACKOFF = 30.0


def backoff(failures: int) -> float:
    """Seconds to wait after ``failures`` failed rounds in a row (0: the usual interval)."""
    if failures <= 0:
        return CLAIM_INTERVAL
    return float(min(MAX_BACKOFF, 0.25 * 2 ** min(failures, 10)))


class LeaseKeeper:
    """Opens the outbox (``open`` returns None while it cannot), then runs ``refill``
    (move claimable rows into memory) and lease renewal until ``stop``.

    ``on_error`` hears of every ``OutboxError``; any other error is logged. Either way the
    keeper carries on after a backoff."""

    def __init__(
        self,
        open_outbox: Callable[[], Outbox | None],
        refill: Callable[[], object],
        on_error: Callable[[OutboxError], None],
        stop: threading.Event,
    ) -> None:
        self._open = open_outbox
        self._refill = refill
        self._on_error = on_error
        self._stop = stop
        self._logged_at = -LOG_INTERVAL
        #: Set to look at the outbox now rather than at the next interval.
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self._run, name="affy-outbox", daemon=True)

    def _run(self) -> None:
        stop, failures = self._stop, 0
        outbox: Outbox | None = None
        next_renew = 0.0
        while not stop.is_set():
            try:
                if outbox is None:
                    outbox = self._open()  # counts and logs its own failures
                    if outbox is None:
                        failures += 1
                        self._pause(backoff(failures))
                        continue
                    next_renew = time.monotonic() + outbox.lease / 4
                if time.monotonic() >= next_renew:
                    outbox.renew()
                    next_renew = time.monotonic() + outbox.lease / 4
                self._refill()
                failures = 0
            except OutboxError as exc:
                failures += 1
                self._on_error(exc)
            except Exception:  # a bug of ours: say so, keep the outbox served
                failures += 1
                self._log_bug()
            self._pause(backoff(failures))

    def _pause(self, seconds: float) -> None:
        self.wake.wait(seconds)
        self.wake.clear()

    def _log_bug(self) -> None:
        now = time.monotonic()
        if now - self._logged_at >= LOG_INTERVAL:
            self._logged_at = now
            logger.exception(
                "affy_middleware: outbox thread failed (carrying on)",
                extra=log_fields(reason="internal_error"),
            )
