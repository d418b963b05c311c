"""What the log says when AFFY refuses an event, or refuses us (key, URL)."""

from __future__ import annotations

import re
import threading
import time
import weakref

from ..._errors import AffyAPIError
from ..._wire import Event
from ..support.logs import LOG_INTERVAL, LogLimiter, log_fields, logger

__all__ = ["redacted", "say_misconfigured", "say_rejected"]

_lock = threading.Lock()
#: Per backend's log limiter: kind -> when it was said last (one ERROR per interval).
_said: weakref.WeakKeyDictionary[LogLimiter, dict[str, float]] = weakref.WeakKeyDictionary()


def _due(log: LogLimiter, kind: str) -> bool:
    now = time.monotonic()
    with _lock:
        said = _said.setdefault(log, {})
        last = said.get(kind)
        if last is not None and now - last < LOG_INTERVAL:
            return False
        said[kind] = now
        return True


def say_misconfigured(log: LogLimiter, exc: BaseException, api_url: str) -> None:
    """One loud ERROR per interval: delivery is paused until AFFY accepts us again, and
    the events are kept (given up only at AFFY_RETRY_DEADLINE)."""
    status = getattr(exc, "status_code", None)
    extra = log_fields(status=status, reason="misconfigured")
    if status in (401, 403):
        if _due(log, "auth"):
            logger.error(
                "affy_middleware: AFFY refuses our API key (%s): run `affy doctor` and check "
                "AFFY_API_KEY; delivery is paused and events are kept until AFFY accepts it",
                status,
                extra=extra,
            )
    elif status is None:  # the answer was too large: not AFFY's
        if _due(log, "too_large"):
            logger.error(
                "affy_middleware: %s (AFFY_API_URL=%s); delivery is paused and events are kept",
                exc,
                api_url,
                extra=extra,
            )
    elif _due(log, "redirect"):
        logger.error(
            "affy_middleware: AFFY_API_URL=%s answers with a redirect (%s); set AFFY_API_URL "
            "to AFFY's address (run `affy doctor`); delivery is paused and events are kept",
            api_url,
            exc,
            extra=extra,
        )


#: What AFFY's answer may echo of the visitor: never logged above DEBUG.
_PERSONAL = ("email", "customerEmail", "customerName")
_EMAIL = re.compile(r"[^\s@\"']+@[^\s@\"']+")


def redacted(text: str, event: Event) -> str:
    """``text`` (AFFY's answer) without the visitor's email or name: for logs above
    DEBUG and dead letters."""
    for key in _PERSONAL:
        value = event.body.get(key)
        if isinstance(value, str) and value:
            text = text.replace(value, "<redacted>")
    return _EMAIL.sub("<redacted>", text)


def say_rejected(log: LogLimiter, event: Event, exc: Exception) -> None:
    if isinstance(exc, AffyAPIError):
        extra = log_fields(event, status=exc.status_code, reason="rejected")
        reason = (type(exc).__name__, exc.status_code, exc.error, exc.message)
        if log.first_time(reason):
            logger.warning(
                "affy_middleware: AFFY refused a %s event, not retrying: %s",
                event.kind,
                redacted(str(exc), event),  # AFFY's message may quote the email or name
                extra=extra,
            )
        else:
            logger.debug(
                "affy_middleware: AFFY refused a %s event: %s", event.kind, exc, extra=extra
            )
    else:
        logger.error(
            "affy_middleware: dropped a %s event after an unexpected error",
            event.kind,
            exc_info=exc,
            extra=log_fields(event, reason="rejected"),
        )
