"""Conversions without a decorator: ``identify``, ``set_lead_value`` and ``report_*``.

Also the two steps every conversion goes through, decorated or not: building its event
from the wire module's builders, and handing it to delivery (:func:`submit`, the one place
conversions reach the delivery).
"""

from __future__ import annotations

from decimal import Decimal

from .. import _defaults, delivery
from .._settings import Settings
from .._wire import Event, lead_value, payment_body, registration_body, registration_lead_body
from ..attribution.context import current_visit
from ..attribution.cookies import is_token
from ..attribution.visit import Visit
from . import handover
from .fields import clean
from .handover import Conversion, hand_over

__all__ = [
    "identify",
    "set_lead_value",
    "report_registration",
    "report_payment",
    "registration_event",
    "payment_event",
    "settings_for",
    "submit",
]


def identify(
    *, email: str | None = None, customer_id: str | int | None = None, name: str | None = None
) -> None:
    """Say who signed up or paid, from inside the view (used by the decorators)::

    identify(email=user.email, customer_id=user.id, name=user.full_name)
    """
    values = (
        clean("email", email, explicit=True),
        clean("customer_id", customer_id, explicit=True),
        clean("name", name, explicit=True),
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


# -- the steps every conversion goes through -----------------------------------------------


def settings_for(visit: Visit | None) -> Settings:
    """The settings of the middleware that handled the visit, else the default ones."""
    if visit is not None and visit.settings is not None:
        return visit.settings
    return _defaults.default_settings()


def submit(settings: Settings, event: Event) -> bool:
    """Hand the event to delivery (through the installed hand-overs: inside a Django atomic
    block, on commit); True when accepted, or taken to be submitted later."""
    # Read in the request, not at commit: whether the visit carries a click id.
    event.expects_click = expects_click(event, current_visit())
    if not handover.installed:  # the common case: no transaction-aware integration
        return delivery.backend_for(settings).submit(event)
    return hand_over(Conversion(settings, event))


def expects_click(event: Event, visit: Visit | None) -> bool:
    """Whether the lead must wait for its click to be at AFFY: a registration by click id,
    or a lead of this request's visit when it came with a click. A lead reported later by
    session id alone (a webhook) is not held."""
    if event.kind == "registration":
        return True
    return visit is not None and visit.click_id is not None and visit.session_id == event.order_key


def registration_event(
    settings: Settings,
    click_id: str | None,
    session_id: str | None,
    email: str | None,
    customer_id: str | None,
    name: str | None,
) -> Event | None:
    """The registration, by click id when there is one, else by session id; None when
    neither can be reported."""
    if click_id is not None:
        body = registration_body(
            click_id=click_id, email=email, customer_id=customer_id, customer_name=name
        )
        return Event("registration", body, session_id or click_id)
    if session_id is not None and settings.client_id is not None:
        body = registration_lead_body(
            settings.client_id, session_id=session_id, customer_email=email, customer_name=name
        )
        return Event("registration_lead", body, session_id)
    return None


def payment_event(client_id: int, session_id: str, amount: Decimal, email: str | None) -> Event:
    """The payment lead, by session id (``amount`` already checked by ``lead_value``)."""
    body = payment_body(client_id, session_id=session_id, lead_value=amount, customer_email=email)
    return Event("payment", body, session_id)


# -- explicit reports ----------------------------------------------------------------------


def _explicit_id(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not is_token(value):
        raise ValueError(f"{name} must be a click/session id token, got {value!r}")
    return value


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
    email_ = clean("email", email, explicit=True)
    customer_id_ = clean("customer_id", customer_id, explicit=True)
    name_ = clean("name", name, explicit=True)
    click_id = _explicit_id("click_id", click_id)
    session_id = _explicit_id("session_id", session_id)
    visit = current_visit()
    if click_id is None and session_id is None and visit is not None:
        click_id, session_id = visit.click_id, visit.session_id
    if visit is not None:
        email_ = email_ or visit.email
        customer_id_ = customer_id_ or visit.customer_id
        name_ = name_ or visit.customer_name
    settings = settings_for(visit)
    if not settings.active:
        return False
    event = registration_event(settings, click_id, session_id, email_, customer_id_, name_)
    return event is not None and submit(settings, event)


def report_payment(
    value: int | float | Decimal | str, *, email: str | None = None, session_id: str | None = None
) -> bool:
    """Report a payment lead by session id; True when accepted for delivery.

    ``ValueError`` for an amount that is not a finite number >= 0::

        report_payment("49.00", session_id=stored_session_id)
    """
    amount = lead_value(value)
    email_ = clean("email", email, explicit=True)
    session_id = _explicit_id("session_id", session_id)
    visit = current_visit()
    if session_id is None and visit is not None:
        session_id = visit.session_id
    if visit is not None:
        email_ = email_ or visit.email
    settings = settings_for(visit)
    if session_id is None or not settings.active or settings.client_id is None:
        return False
    return submit(settings, payment_event(settings.client_id, session_id, amount, email_))
