"""The view decorators: ``@track_registration`` and ``@track_payment``.

A decorated view reports its conversion after it returned without raising and with a
status below 400, for a referred visitor only. Reporting only enqueues; every failure in it
is logged and swallowed, so the view's response always goes out unchanged.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, TypeVar, overload

from .. import delivery
from .._logging import log_failure
from .._wire import lead_value
from ..attribution.context import _current
from .fields import CustomerExtractor, customer_fields
from .reports import payment_event, registration_event, settings_for, submit
from .status import failed

__all__ = ["track_registration", "track_payment", "DEFAULT_METHODS"]

from .._logging import log_fields

logger = logging.getLogger("affy_middleware")

F = TypeVar("F", bound=Callable[..., Any])

#: Methods on which a decorated view reports (GET renders the form; POST converts).
DEFAULT_METHODS: tuple[str, ...] = ("POST", "PUT", "PATCH")


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
    if failed(result, args, kwargs):
        return
    settings = settings_for(visit)
    if not settings.active:
        return
    email, customer_id, name = visit.email, visit.customer_id, visit.customer_name
    if extract is not None or not (email or customer_id or name):
        email, customer_id, name = customer_fields(visit, result, extract, args, kwargs)
    event = registration_event(settings, visit.click_id, visit.session_id, email, customer_id, name)
    if event is not None:
        submit(settings, event)


def _after_payment(
    result: Any,
    value: Decimal | Callable[[Any], Any] | None,
    extract: CustomerExtractor | None,
    methods: frozenset[str] | None,
    args: Any,
    kwargs: Any,
) -> None:
    visit = _current.get()
    if visit is None or visit.session_id is None:
        return
    if methods is not None and visit.method not in methods:
        return
    if failed(result, args, kwargs):
        return
    settings = settings_for(visit)
    if not settings.active or settings.client_id is None:
        return
    amount = visit.lead_value
    if amount is None and value is not None:
        amount = lead_value(value(result)) if callable(value) else value
    if amount is None:
        logger.warning(
            "affy_middleware: a @track_payment view succeeded without an amount (call "
            "set_lead_value(amount) in the view or pass value=...); payment not reported",
            extra=log_fields(reason="no_amount"),
        )
        return
    email, _, _ = customer_fields(visit, result, extract, args, kwargs)
    submit(settings, payment_event(settings.client_id, visit.session_id, amount, email))


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
    # the view and ``after``.
    what = f"reporting the conversion of {getattr(view, '__qualname__', view)!r}"

    if inspect.iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_view(*args: Any, **kwargs: Any) -> Any:
            result = await view(*args, **kwargs)
            try:
                if delivery.backend_for(settings_for(_current.get())).blocks:
                    # Sync delivery sends before returning: do it on a worker thread (the
                    # context, and so the visit, goes along) so the event loop keeps serving.
                    await asyncio.to_thread(after, result, args, kwargs)
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
