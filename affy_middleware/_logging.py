"""Our own failures, logged without flooding: at most one traceback per interval."""

from __future__ import annotations

import logging
import time
from typing import Any

__all__ = ["log_failure", "log_fields", "FIELDS", "LOG_INTERVAL"]

logger = logging.getLogger("affy_middleware")

def log_fields(
    event: Any = None, *, status: int | None = None, reason: str | None = None
) -> dict[str, Any]:
    """The ``extra`` of every record of the library, so a JSON formatter gets the same
    fields on each: the event's id and kind (never its body: no email, no name), AFFY's
    HTTP status, why. None where they do not apply."""
    return {
        "affy_event_id": getattr(event, "event_id", None),
        "affy_kind": getattr(event, "kind", None),
        "affy_status": status,
        "affy_reason": reason,
    }


FIELDS = ("affy_event_id", "affy_kind", "affy_status", "affy_reason")


class _EveryRecordHasTheFields(logging.Filter):
    """Records logged without ``extra`` (the DEBUG ones, say) get the fields as None, so a
    formatter naming them never fails on one of ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name in FIELDS:
            if not hasattr(record, name):
                setattr(record, name, None)
        return True


logger.addFilter(_EveryRecordHasTheFields())


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
            extra=log_fields(reason="internal_error"),
        )
        self.suppressed = 0


#: ``log_failure("enqueueing the click")`` inside an ``except`` block.
log_failure = _FailureLog()
