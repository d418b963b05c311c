"""Conversions: ``@track_registration``, ``@track_payment``, ``identify``, ``report_*``.

A decorated view reports its conversion after it returned without raising and with a
status below 400, for a referred visitor only. Reporting only enqueues; every failure in it
is logged and swallowed, so the view's response always goes out unchanged.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, Final, TypeVar, overload

import anyio.to_thread

from . import _delivery, _resolution
from ._logging import log_failure
from ._settings import Settings
from ._wire import (
    Event,
    lead_value,
    payment_body,
    registration_lead_body,
)
from .attribution.context import _current, current_visit
from .attribution.cookies import is_token
from .attribution.visit import Visit

__all__ = [
    "track_registration",
    "track_payment",
    "identify",
    "set_lead_value",
    "report_registration",
    "report_payment",
    "response_status",
    "register_field_source",
]

logger = logging.getLogger("affy_middleware")

F = TypeVar("F", bound=Callable[..., Any])
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
#: Methods on which a decorated view reports (GET renders the form; POST converts).
DEFAULT_METHODS: tuple[str, ...] = ("POST", "PUT", "PATCH")


# -- inside a request --------------------------------------------------------------------


def _text(name: str, value: object, *, explicit: bool) -> str | None:
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


def identify(
    *, email: str | None = None, customer_id: str | int | None = None, name: str | None = None
) -> None:
    """Say who signed up or paid, from inside the view (used by the decorators)::

    identify(email=user.email, customer_id=user.id, name=user.full_name)
    """
    values = (
        _text("email", email, explicit=True),
        _text("customer_id", customer_id, explicit=True),
        _text("name", name, explicit=True),
    )
    visit = current_visit()
    if visit is None:
        return
    visit.email = values[0] or visit.email
    visit.customer_id = values[1] or visit.customer_id
    visit.customer_name = values[2] or visit.customer_name


def set_lead_value(value: int | float | Decimal | str) -> None:
    """The amount of this request's payment (``@track_payment``). ``ValueError`` if not a
    finite number >= 0."""
    amount = lead_value(value)
    visit = current_visit()
    if visit is not None:
        visit.lead_value = amount


# -- explicit reports ----------------------------------------------------------------------


def _explicit_id(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not is_token(value):
        raise ValueError(f"{name} must be a click/session id token, got {value!r}")
    return value


def _settings_for(visit: Visit | None) -> Settings:
    if visit is not None and visit.settings is not None:
        return visit.settings
    return _resolution.default_settings()


def _enqueue(settings: Settings, event: Event) -> bool:
    return _delivery.dispatcher_for(settings).enqueue(event)


def _registration_event(
    settings: Settings,
    click_id: str | None,
    session_id: str | None,
    email: str | None,
    customer_id: str | None,
    name: str | None,
) -> Event | None:
    if click_id is not None:
        # registration_body(...), built directly (same keys and order, None left out):
        # the click id is a token and the fields went through _text already.
        body: dict[str, Any] = {"clickId": click_id}
        if email is not None:
            body["email"] = email
        if customer_id is not None:
            body["customerId"] = str(customer_id)
        if name is not None:
            body["customerName"] = name
        return Event("registration", body, session_id or click_id)
    if session_id is not None and settings.client_id is not None:
        body = registration_lead_body(
            settings.client_id, session_id=session_id, customer_email=email, customer_name=name
        )
        return Event(kind="registration_lead", body=body, order_key=session_id)
    return None


def report_registration(
    *,
    email: str | None = None,
    customer_id: str | int | None = None,
    name: str | None = None,
    click_id: str | None = None,
    session_id: str | None = None,
) -> bool:
    """Report a registration without a decorator; True when accepted for delivery.

    In a request the visit's ids are used; outside one (a webhook, a job) pass the ids you
    stored. By click id when there is one, else by session id::

        report_registration(email="ann@example.com", session_id=stored_session_id)
    """
    email_ = _text("email", email, explicit=True)
    customer_id_ = _text("customer_id", customer_id, explicit=True)
    name_ = _text("name", name, explicit=True)
    click_id = _explicit_id("click_id", click_id)
    session_id = _explicit_id("session_id", session_id)
    visit = current_visit()
    if click_id is None and session_id is None and visit is not None:
        click_id, session_id = visit.click_id, visit.session_id
    if visit is not None:
        email_ = email_ or visit.email
        customer_id_ = customer_id_ or visit.customer_id
        name_ = name_ or visit.customer_name
    settings = _settings_for(visit)
    if not settings.active:
        return False
    event = _registration_event(settings, click_id, session_id, email_, customer_id_, name_)
    return event is not None and _enqueue(settings, event)


def report_payment(
    value: int | float | Decimal | str, *, email: str | None = None, session_id: str | None = None
) -> bool:
    """Report a payment lead by session id; True when accepted for delivery.

    ``ValueError`` for an amount that is not a finite number >= 0::

        report_payment("49.00", session_id=stored_session_id)
    """
    amount = lead_value(value)
    email_ = _text("email", email, explicit=True)
    session_id = _explicit_id("session_id", session_id)
    visit = current_visit()
    if session_id is None and visit is not None:
        session_id = visit.session_id
    if visit is not None:
        email_ = email_ or visit.email
    settings = _settings_for(visit)
    if session_id is None or not settings.active or settings.client_id is None:
        return False
    body = payment_body(
        settings.client_id, session_id=session_id, lead_value=amount, customer_email=email_
    )
    return _enqueue(settings, Event(kind="payment", body=body, order_key=session_id))


# -- what the view returned ----------------------------------------------------------------


def response_status(result: Any) -> int | None:
    """The HTTP status a view's return value carries, or None when it carries none.

    Framework responses (``status_code``; a ``status`` int or ``"404 NOT FOUND"``) and
    Flask-style tuples ``(body, status)`` / ``(body, status, headers)``.
    """
    if isinstance(result, tuple):
        if len(result) >= 2 and isinstance(result[1], (int, str)):
            return _status_number(result[1])
        return response_status(result[0]) if result else None
    if isinstance(result, (str, bytes, dict, list)) or result is None:
        return None
    code = getattr(result, "status_code", None)
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    return _status_number(getattr(result, "status", None))


#: Return values ``response_status`` gives None for, whatever they hold.
_NO_STATUS: Final = frozenset({str, bytes, dict, list, type(None)})


def _status_number(status: object) -> int | None:
    if isinstance(status, bool):
        return None
    if isinstance(status, int):
        return status
    if isinstance(status, str):
        head = status.strip().split(" ", 1)[0]
        return int(head) if head.isdigit() else None
    return None


# -- where customer fields come from -----------------------------------------------------------


def _flask_fields(
    args: tuple[Any, ...], kwargs: Mapping[str, Any], visit: Visit | None
) -> Mapping[str, Any] | None:
    flask = sys.modules.get("flask")
    if flask is None or not flask.has_request_context():
        return None
    request = flask.request
    if request.is_json:
        data = request.get_json(silent=True)
        return data if isinstance(data, dict) else None
    return request.form  # type: ignore[no-any-return]


def _django_fields(
    args: tuple[Any, ...], kwargs: Mapping[str, Any], visit: Visit | None
) -> Mapping[str, Any] | None:
    # Django views (and DRF) take the request first; bound methods take it second.
    for candidate in args[:2]:
        post = getattr(candidate, "POST", None)
        if post is not None and hasattr(candidate, "META"):
            data = getattr(candidate, "data", None)  # DRF's parsed body, if any
            if isinstance(data, Mapping) and data:
                return data
            return post  # type: ignore[no-any-return]
    return None


def _werkzeug_fields(
    args: tuple[Any, ...], kwargs: Mapping[str, Any], visit: Visit | None
) -> Mapping[str, Any] | None:
    # Plain WSGI: only what a werkzeug Request already parsed; the body is never read here.
    environ = visit.native if visit is not None else None
    request = environ.get("werkzeug.request") if isinstance(environ, dict) else None
    if request is not None and "form" in getattr(request, "__dict__", {}):
        return request.form  # type: ignore[no-any-return]
    return None


_FIELD_SOURCES: list[FieldSource] = [_flask_fields, _django_fields, _werkzeug_fields]


def register_field_source(source: FieldSource) -> None:
    """Add a place form fields are read from (integrations for other frameworks use it)."""
    _FIELD_SOURCES.insert(0, source)


def _first(data: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = data.get(name)
        if value:
            return value
    return None


def _customer_fields(
    visit: Visit, result: Any, extract: CustomerExtractor | None, args: Any, kwargs: Any
) -> tuple[str | None, str | None, str | None]:
    """Customer data for the event. A failing extractor or form source is logged and
    skipped: the conversion is still reported, only without those fields."""
    email, customer_id, name = visit.email, visit.customer_id, visit.customer_name
    if extract is not None and not (email and customer_id and name):
        try:
            data = extract(result) or {}
            email = email or _text("email", data.get("email"), explicit=False)
            customer_id = customer_id or _text(
                "customer_id", data.get("customer_id"), explicit=False
            )
            name = name or _text("name", data.get("name"), explicit=False)
        except Exception:
            log_failure("the customer= extractor")
    if not (email or customer_id or name):  # identify() (or the extractor) said nothing
        for source in _FIELD_SOURCES:
            try:
                form = source(args, kwargs, visit)
                if not form:
                    continue
                email = email or _text("email", _first(form, EMAIL_FIELDS), explicit=False)
                if not name:
                    full = _first(form, NAME_FIELDS)
                    if not full and form.get("first_name"):
                        full = f"{form.get('first_name')} {form.get('last_name') or ''}"
                    name = _text("name", full, explicit=False)
                customer_id = customer_id or _text(
                    "customer_id", _first(form, CUSTOMER_ID_FIELDS), explicit=False
                )
            except Exception:  # e.g. Django's RawPostDataException after a streamed read
                logger.debug("affy_middleware: reading form fields failed", exc_info=True)
                continue
            break
    return email, customer_id, name


# -- the decorators ------------------------------------------------------------------------------


def _after_registration(
    result: Any,
    extract: CustomerExtractor | None,
    methods: frozenset[str] | None,
    args: Any,
    kwargs: Any,
) -> None:
    visit = _current.get()
    if visit is None or (visit.click_id is None and visit.session_id is None):
        return
    if methods is not None and visit.method not in methods:
        return
    if type(result) not in _NO_STATUS:  # a plain body (or a WSGI iterable) has no status
        status = response_status(result)
        if status is not None and status >= 400:
            return
    settings = visit.settings or _resolution.default_settings()
    if not settings.active:
        return
    email, customer_id, name = visit.email, visit.customer_id, visit.customer_name
    if extract is not None or not (email or customer_id or name):
        email, customer_id, name = _customer_fields(visit, result, extract, args, kwargs)
    event = _registration_event(
        settings, visit.click_id, visit.session_id, email, customer_id, name
    )
    if event is not None:
        _delivery.dispatcher_for(settings).enqueue(event)


def _after_payment(
    result: Any,
    value: Decimal | Callable[[Any], Any] | None,
    extract: CustomerExtractor | None,
    methods: frozenset[str] | None,
    args: Any,
    kwargs: Any,
) -> None:
    visit = current_visit()
    if visit is None or visit.session_id is None:
        return
    if methods is not None and visit.method not in methods:
        return
    status = response_status(result)
    if status is not None and status >= 400:
        return
    settings = _settings_for(visit)
    if not settings.active or settings.client_id is None:
        return
    amount = visit.lead_value
    if amount is None and value is not None:
        amount = lead_value(value(result)) if callable(value) else value
    if amount is None:
        logger.warning(
            "affy_middleware: a @track_payment view succeeded without an amount (call "
            "set_lead_value(amount) in the view or pass value=...); payment not reported"
        )
        return
    email, _, _ = _customer_fields(visit, result, extract, args, kwargs)
    body = payment_body(
        settings.client_id, session_id=visit.session_id, lead_value=amount, customer_email=email
    )
    _enqueue(settings, Event(kind="payment", body=body, order_key=visit.session_id))


def _methods(methods: Iterable[str] | None) -> frozenset[str] | None:
    if methods is None:
        return None
    if isinstance(methods, str):
        methods = (methods,)
    allowed = frozenset(m.upper() for m in methods)
    if not allowed or not all(isinstance(m, str) and m.isalpha() for m in allowed):
        raise ValueError(f"methods must be HTTP method names, got {methods!r}")
    return allowed


def _wrap(view: F, after: Callable[[Any, tuple[Any, ...], dict[str, Any]], None]) -> F:
    # Everything about the view is looked at here, once; per call the wrapper only runs
    # the view and ``after`` (inlined: one call less on every request).
    what = f"reporting the conversion of {getattr(view, '__qualname__', view)!r}"

    if inspect.iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_view(*args: Any, **kwargs: Any) -> Any:
            result = await view(*args, **kwargs)
            try:
                if _settings_for(_current.get()).delivery == "sync":
                    # Sync delivery sends before returning: do it on a worker thread (the
                    # context, and so the visit, goes along) so the event loop keeps serving.
                    await anyio.to_thread.run_sync(functools.partial(after, result, args, kwargs))
                else:
                    after(result, args, kwargs)
            except Exception:
                log_failure(what)
            return result

        return async_view  # type: ignore[return-value]

    @functools.wraps(view)
    def sync_view(*args: Any, **kwargs: Any) -> Any:
        result = view(*args, **kwargs)
        try:
            after(result, args, kwargs)
        except Exception:
            log_failure(what)
        return result

    return sync_view  # type: ignore[return-value]


@overload
def track_registration(view: F) -> F: ...
@overload
def track_registration(
    *, customer: CustomerExtractor | None = None, methods: Iterable[str] | None = ...
) -> Callable[[F], F]: ...
def track_registration(
    view: F | None = None,
    *,
    customer: CustomerExtractor | None = None,
    methods: Iterable[str] | None = DEFAULT_METHODS,
) -> F | Callable[[F], F]:
    """Report a registration when the view succeeds, for a referred visitor::

        @app.post("/signup")
        @track_registration
        def signup(): ...

    By click id when the visitor has one, else by session id. Customer data from
    ``identify()``, else ``customer(view_result)``, else the form/JSON fields ``email``,
    ``name``, ``customer_id``/``user_id`` the framework already parsed.

    Only requests whose method is in ``methods`` (default POST, PUT, PATCH) report, so one
    view can render the form on GET and register on POST; ``methods=None``: any method.
    """
    if customer is not None and not callable(customer):
        raise TypeError(f"customer must be a callable(view_result) -> mapping, got {customer!r}")
    allowed = _methods(methods)

    def after(result: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        _after_registration(result, customer, allowed, args, kwargs)

    def decorate(view: F) -> F:
        return _wrap(view, after)

    return decorate if view is None else decorate(view)


@overload
def track_payment(view: F) -> F: ...
@overload
def track_payment(
    *,
    value: int | float | Decimal | str | Callable[[Any], Any] | None = None,
    customer: CustomerExtractor | None = None,
    methods: Iterable[str] | None = ...,
) -> Callable[[F], F]: ...
def track_payment(
    view: F | None = None,
    *,
    value: int | float | Decimal | str | Callable[[Any], Any] | None = None,
    customer: CustomerExtractor | None = None,
    methods: Iterable[str] | None = DEFAULT_METHODS,
) -> F | Callable[[F], F]:
    """Report a payment lead (by session id) when the view succeeds::

    @app.post("/checkout")
    @track_payment               # amount from set_lead_value(...) in the view
    def checkout(): ...

    @track_payment(value="49.00")   # or a fixed amount / callable(view_result)
    """
    amount: Decimal | Callable[[Any], Any] | None
    amount = value if value is None or callable(value) else lead_value(value)
    if customer is not None and not callable(customer):
        raise TypeError(f"customer must be a callable(view_result) -> mapping, got {customer!r}")
    allowed = _methods(methods)

    def decorate(view: F) -> F:
        return _wrap(view, lambda r, a, k: _after_payment(r, amount, customer, allowed, a, k))

    return decorate if view is None else decorate(view)
