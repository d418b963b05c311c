"""AFFY's HTTP answers mapped: a 2xx body to a dict, anything else to an AffyAPIError."""

from __future__ import annotations

import email.utils
import math
import time
from typing import Any

import httpx

from .._errors import (
    AffyAPIError,
    AffyAuthError,
    AffyNotFoundError,
    AffyRateLimitError,
    AffyServerError,
    AffyValidationError,
)
from .._wire import decode_body

__all__ = ["parse_retry_after", "error_for_response", "response_body", "redact"]

#: Characters of a non-JSON error body quoted in the exception message.
_SNIPPET = 200


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds from now (delta-seconds or an HTTP date), else None."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def response_body(response: httpx.Response) -> dict[str, Any]:
    """A 2xx answer's JSON object; an empty or non-JSON body counts as ``{}``."""
    if not response.content:
        return {}
    try:
        return decode_body(response.content)
    except ValueError:  # includes UnicodeDecodeError and JSONDecodeError
        return {}


def _error_words(response: httpx.Response) -> tuple[str | None, str]:
    try:
        data = decode_body(response.content)
    except (ValueError, RecursionError):
        data = None
    if data is not None:
        error, message = data.get("error"), data.get("message")
        if isinstance(message, str) and message.strip():
            return (error if isinstance(error, str) else None), message[:1000]
        if isinstance(error, str) and error.strip():
            return error, error[:1000]
    text = response.content[:_SNIPPET].decode("utf-8", "replace").strip()
    reason = response.reason_phrase or "Error"
    return reason, (text or f"AFFY answered HTTP {response.status_code} without a message")


#: The shortest API key cut out of messages: a shorter one (a test's "k") is no real key,
#: and cutting it out would mangle AFFY's words ("bad ***ey").
MIN_REDACTED_KEY = 8


def redact(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` (the API key) replaced by ``***``, if it is long enough."""
    if secret and len(secret) >= MIN_REDACTED_KEY:
        return text.replace(secret, "***")
    return text


def error_for_response(response: httpx.Response, *, secret: str | None = None) -> AffyAPIError:
    """The exception for a non-2xx answer, carrying the status and AFFY's message.

    ``secret`` (the API key) is cut out of AFFY's words, in case a server echoes it.
    """
    status = response.status_code
    error, message = _error_words(response)
    message = redact(message, secret)
    error = None if error is None else redact(error, secret)
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status in (401, 403):
        return AffyAuthError(message, status_code=status, error=error)
    if status == 404:
        return AffyNotFoundError(message, status_code=status, error=error)
    if status == 429:
        return AffyRateLimitError(message, status_code=status, error=error, retry_after=retry_after)
    if status == 408 or status >= 500:
        return AffyServerError(message, status_code=status, error=error, retry_after=retry_after)
    if 400 <= status < 500:
        return AffyValidationError(message, status_code=status, error=error)
    if 300 <= status < 400:  # AFFY_API_URL points at a redirect: our configuration
        location = redact(response.headers.get("Location", "(no Location)"), secret)[:300]
        return AffyAPIError(
            f"AFFY answered HTTP {status}, a redirect to {location}: AFFY_API_URL is wrong",
            status_code=status,
            error="redirect",
        )
    return AffyAPIError(
        f"unexpected HTTP {status} from AFFY: {message}", status_code=status, error=error
    )
