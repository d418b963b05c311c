"""The exceptions the library raises."""

from __future__ import annotations

__all__ = [
    "AffyError",
    "AffyConfigError",
    "AffyAPIError",
    "AffyAuthError",
    "AffyValidationError",
    "AffyNotFoundError",
    "AffyRateLimitError",
    "AffyServerError",
    "AffyNetworkError",
    "AffyTimeoutError",
]


class AffyError(Exception):
    """Base class of every error raised by affy_middleware."""


class AffyConfigError(AffyError, ValueError):
    """A setting is malformed. Raised once, at set-up time, naming the variable and the fix."""


class AffyAPIError(AffyError):
    """AFFY (or the network on the way to it) refused a call.

    ``status_code`` is the HTTP status (``None`` for network errors), ``error`` and
    ``message`` are AFFY's own words from the error body.
    """

    #: Whether sending the same request again later may succeed.
    retryable: bool = False

    def __init__(
        self, message: str, *, status_code: int | None = None, error: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.error = error

    def __str__(self) -> str:
        if self.status_code is None:
            return self.message
        return f"{self.status_code} {self.error or 'Error'}: {self.message}"


class AffyAuthError(AffyAPIError):
    """401/403: the API key is missing, wrong or not allowed to do this."""


class AffyValidationError(AffyAPIError):
    """400/422 and other 4xx: AFFY rejected the request body. Never retried."""


class AffyNotFoundError(AffyValidationError):
    """404: the session, click or path is unknown to AFFY."""


class AffyRateLimitError(AffyAPIError):
    """429: slow down. ``retry_after`` is AFFY's ``Retry-After`` in seconds, if it sent one."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = 429,
        error: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, error=error)
        self.retry_after = retry_after


class AffyServerError(AffyAPIError):
    """5xx or 408: AFFY failed; the same request may succeed later."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, error=error)
        self.retry_after = retry_after


class AffyNetworkError(AffyAPIError):
    """AFFY could not be reached (connection refused, DNS, TLS, reset)."""

    retryable = True


class AffyTimeoutError(AffyNetworkError):
    """AFFY did not answer within the configured timeout."""
