"""Server-side AFFY affiliate attribution for Python web apps.

Wrap the app, decorate the signup and checkout views::

    from affy_middleware import AffyMiddleware, track_registration, track_payment

    app.wsgi_app = AffyMiddleware(app.wsgi_app)
"""

from ._errors import (
    AffyAPIError,
    AffyAuthError,
    AffyConfigError,
    AffyError,
    AffyNetworkError,
    AffyNotFoundError,
    AffyRateLimitError,
    AffyServerError,
    AffyTimeoutError,
    AffyValidationError,
)
from ._health import Health, health
from ._settings import Settings
from .attribution.context import current_visit
from .attribution.visit import Visit
from .client import (
    AffyClient,
    AsyncAffyClient,
    ClickResult,
    LeadResult,
    PaymentResult,
    RegistrationResult,
    StatusResult,
)
from .conversions import (
    identify,
    report_payment,
    report_registration,
    set_lead_value,
    track_payment,
    track_registration,
)
from .delivery import flush, shutdown, stats
from .middleware.asgi import AffyASGIMiddleware
from .middleware.wsgi import AffyMiddleware

__version__ = "0.1.0"

__all__ = [
    "AffyMiddleware",
    "AffyASGIMiddleware",
    "track_registration",
    "track_payment",
    "identify",
    "set_lead_value",
    "report_registration",
    "report_payment",
    "current_visit",
    "Visit",
    "Settings",
    "AffyClient",
    "AsyncAffyClient",
    "ClickResult",
    "RegistrationResult",
    "LeadResult",
    "PaymentResult",
    "StatusResult",
    "flush",
    "shutdown",
    "stats",
    "health", "Health",
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

# Prometheus / OpenTelemetry metrics, when either library is installed (docs/metrics.md),
# at the library's first set-up: importing it registers nothing.
from .delivery import when_set_up as _when_set_up  # noqa: E402
from .metrics import register_installed as _register_metrics  # noqa: E402

_when_set_up(_register_metrics)
