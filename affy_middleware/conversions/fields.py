"""Where customer data comes from when the view did not call ``identify()``.

The order is: ``identify()`` in the view, else the decorator's ``customer=`` extractor,
else the form/JSON fields the framework already parsed, read by a *field source*. The core
knows one source, the generic one (a werkzeug request that parsed its form); every
framework's source lives in its integration module (``affy_middleware.flask``,
``affy_middleware.django``, ``affy_middleware.fastapi``) and registers itself with
:func:`register_field_source` when that module is imported.

An app may use the decorators without ever importing the integration module (a Flask app
wrapped in plain ``AffyMiddleware``, a Starlette app without FastAPI). So the first time
form fields are needed, the integration of every framework already imported by the process
is imported too (:data:`INTEGRATIONS`): by then the app has imported its framework, and
the process pays the import once, never on a request that called ``identify()``.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any

from .._logging import log_failure
from ..attribution.visit import Visit

__all__ = [
    "FieldSource",
    "CustomerExtractor",
    "INTEGRATIONS",
    "register_field_source",
    "import_integrations",
    "clean",
    "customer_fields",
    "EMAIL_FIELDS",
    "NAME_FIELDS",
    "CUSTOMER_ID_FIELDS",
]

logger = logging.getLogger("affy_middleware")

#: ``extract(view_result) -> {"email": ..., "customer_id": ..., "name": ...}`` or None.
CustomerExtractor = Callable[[Any], "Mapping[str, Any] | None"]
#: ``source(view_args, view_kwargs, visit) -> form-like mapping`` or None.
FieldSource = Callable[
    [tuple[Any, ...], Mapping[str, Any], "Visit | None"], "Mapping[str, Any] | None"
]

#: Form/JSON field names a signup or checkout form usually has, in order of preference.
EMAIL_FIELDS = ("email", "email_address", "emailAddress", "user_email", "customer_email", "e-mail")
NAME_FIELDS = ("name", "full_name", "fullName", "customer_name", "customerName", "display_name")
CUSTOMER_ID_FIELDS = ("customer_id", "customerId", "user_id", "userId")
#: Longest customer field we forward (the rest is cut); emails longer than 254 are dropped.
MAX_FIELD_LENGTH = 200
MAX_EMAIL_LENGTH = 254

#: A framework's top-level module -> the integration module holding its field source.
INTEGRATIONS: dict[str, str] = {
    "flask": "affy_middleware.flask",
    "django": "affy_middleware.django",
    "starlette": "affy_middleware.fastapi",
}


def clean(name: str, value: object, *, explicit: bool) -> str | None:
    """A customer field: a stripped printable string, or None. Explicit arguments of the
    wrong type are programming errors; visitor input that doesn't fit is just ignored."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        if explicit:
            raise ValueError(f"{name} must be a string, got {type(value).__name__}")
        return None
    text = str(value).strip()
    if not text or not text.isprintable():
        return None
    if name == "email":
        return text if len(text) <= MAX_EMAIL_LENGTH and "@" in text else None
    return text[:MAX_FIELD_LENGTH]


def _werkzeug_fields(
    args: tuple[Any, ...], kwargs: Mapping[str, Any], visit: Visit | None
) -> Mapping[str, Any] | None:
    # Plain WSGI: only what a werkzeug Request already parsed; the body is never read here.
    environ = visit.native if visit is not None else None
    request = environ.get("werkzeug.request") if isinstance(environ, dict) else None
    if request is not None and "form" in getattr(request, "__dict__", {}):
        return request.form  # type: ignore[no-any-return]
    return None


#: Framework sources first (newest registered first), the generic one last.
_sources: list[FieldSource] = [_werkzeug_fields]
#: Frameworks whose integration was not imported yet (see the module docstring).
_pending = dict(INTEGRATIONS)


def register_field_source(source: FieldSource) -> None:
    """Add a place form fields are read from (integrations for other frameworks use it)."""
    if source not in _sources:
        _sources.insert(0, source)


def import_integrations() -> None:
    """Import the integration of every framework the process has imported (once each)."""
    if _pending:
        _import_integrations()


def _import_integrations() -> None:
    for framework, integration in list(_pending.items()):
        if framework in sys.modules:
            # Imported before it leaves the table: a second thread here waits on the import
            # lock until the module (and so its source) is registered.
            try:
                importlib.import_module(integration)
            except ImportError:
                logger.debug("affy_middleware: %s not imported", integration, exc_info=True)
            _pending.pop(framework, None)


def _first(data: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = data.get(name)
        if value:
            return value
    return None


def customer_fields(
    visit: Visit, result: Any, extract: CustomerExtractor | None, args: Any, kwargs: Any
) -> tuple[str | None, str | None, str | None]:
    """``(email, customer_id, name)`` for the event. A failing extractor or form source is
    logged and skipped: the conversion is still reported, only without those fields."""
    email, customer_id, name = visit.email, visit.customer_id, visit.customer_name
    if extract is not None and not (email and customer_id and name):
        try:
            data = extract(result) or {}
            email = email or clean("email", data.get("email"), explicit=False)
            customer_id = customer_id or clean(
                "customer_id", data.get("customer_id"), explicit=False
            )
            name = name or clean("name", data.get("name"), explicit=False)
        except Exception:
            log_failure("the customer= extractor")
    if email or customer_id or name:  # identify() (or the extractor) said who
        return email, customer_id, name
    if _pending:
        _import_integrations()
    for source in _sources:
        try:
            form = source(args, kwargs, visit)
            if not form:
                continue
            email = email or clean("email", _first(form, EMAIL_FIELDS), explicit=False)
            if not name:
                full = _first(form, NAME_FIELDS)
                if not full and form.get("first_name"):
                    full = f"{form.get('first_name')} {form.get('last_name') or ''}"
                name = clean("name", full, explicit=False)
            customer_id = customer_id or clean(
                "customer_id", _first(form, CUSTOMER_ID_FIELDS), explicit=False
            )
        except Exception:  # e.g. Django's RawPostDataException after a streamed read
            logger.debug("affy_middleware: reading form fields failed", exc_info=True)
            continue
        break
    return email, customer_id, name
