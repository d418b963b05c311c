"""Delivery's log lines, rate-limited in one place: an outage must not flood the log."""

from __future__ import annotations

import logging
import threading
import time

from ..._logging import log_fields

__all__ = ["LogLimiter", "logger", "log_fields"]

logger = logging.getLogger("affy_middleware")

#: Seconds between two warnings of the same kind.
LOG_INTERVAL = 60.0
#: Distinct refusal reasons logged at WARNING; later ones go to DEBUG.
MAX_REASONS = 100


class LogLimiter:
    """Warnings of one kind at most once per ``LOG_INTERVAL``; each refusal reason once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._reasons: set[tuple[object, ...]] = set()

    def warn(
        self,
        kind: str,
        message: str,
        *args: object,
        event: object = None,
        status: int | None = None,
        level: int = logging.WARNING,
    ) -> None:
        """Log at most once per interval per ``kind`` (also the record's ``affy_reason``)."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < LOG_INTERVAL:
                return
            self._last[kind] = now
        extra = log_fields(event, status=status, reason=kind)
        logger.log(level, "affy_middleware: " + message, *args, extra=extra)

    def first_time(self, reason: tuple[object, ...]) -> bool:
        """Whether this refusal reason is new (then it is worth a warning)."""
        with self._lock:
            if reason in self._reasons or len(self._reasons) >= MAX_REASONS:
                return False
            self._reasons.add(reason)
            return True
