"""Our own failures, logged without flooding: at most one traceback per interval."""

from __future__ import annotations

import logging
import time

__all__ = ["log_failure", "LOG_INTERVAL"]

logger = logging.getLogger("affy_middleware")

#: Seconds between two logged tracking failures (the rest are counted, not logged).
LOG_INTERVAL = 60.0


class _FailureLog:
    """Logs our own failures at most once per interval, with the traceback."""

    def __init__(self) -> None:
        self.last = 0.0
        self.suppressed = 0

    def __call__(self, what: str) -> None:
        now = time.monotonic()
        if now - self.last < LOG_INTERVAL and self.last:
            self.suppressed += 1
            return
        self.last = now
        logger.error(
            "affy_middleware: %s failed; the request continues untracked "
            "(%d similar failures not logged)",
            what,
            self.suppressed,
            exc_info=True,
        )
        self.suppressed = 0


#: ``log_failure("enqueueing the click")`` inside an ``except`` block.
log_failure = _FailureLog()
