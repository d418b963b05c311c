"""One builder per AFFY request body (click, registration, registration lead by session,
payment), shared by the client, the middleware and the decorators, and the check of a
lead's amount. Each raises ``ValueError`` at the call site for a value AFFY would refuse."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = [
    "lead_value",
    "click_body",
    "checked_click_body",
    "registration_body",
    "registration_lead_body",
    "payment_body",
]

_CENTS = Decimal("0.01")


def lead_value(value: object) -> Decimal:
    """Validate an amount: int, float, Decimal or numeric str; finite and >= 0.

    Returned as a Decimal with cents (``99`` -> ``Decimal("99.00")``). Raises ``ValueError``
    at the call site for anything else (a programming error, not a visitor's input).
    """
    if isinstance(value, bool):
        raise ValueError(f"lead value must be a number, got {value!r}")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        amount = Decimal(repr(value))  # 19.99 -> Decimal("19.99"), not the binary expansion
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except ArithmeticError:
            raise ValueError(f"lead value must be numeric, got {value!r}") from None
    else:
        raise ValueError(f"lead value must be a number, got {type(value).__name__}")
    if not amount.is_finite():
        raise ValueError(f"lead value must be finite, got {value!r}")
    if amount < 0:
        raise ValueError(f"lead value must be >= 0, got {value!r}")
    return amount.quantize(_CENTS, rounding=ROUND_HALF_UP)


def _require(name: str, value: str | None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def click_body(
    client_id: int,
    *,
    affiliate_reference: str,
    click_id: str,
    session_id: str,
    clicked_url: str | None = None,
    referrer_url: str | None = None,
    user_agent: str | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    _require("affiliate_reference", affiliate_reference)
    _require("click_id", click_id)
    _require("session_id", session_id)
    return checked_click_body(
        client_id,
        affiliate_reference,
        click_id,
        session_id,
        clicked_url,
        referrer_url,
        user_agent,
        source,
    )


def checked_click_body(
    client_id: int | None,
    affiliate_reference: str,
    click_id: str,
    session_id: str,
    clicked_url: str | None,
    referrer_url: str | None,
    user_agent: str | None,
    source: str | None,
) -> dict[str, Any]:
    """:func:`click_body` for values known to be valid (the middleware's landing: its ids
    are tokens, the reference a plausible value). Same keys, same order, None left out;
    built key by key, as this runs on every landing."""
    body: dict[str, Any] = {} if client_id is None else {"clientId": client_id}
    body["affiliateReference"] = affiliate_reference
    body["clickId"] = click_id
    body["sessionId"] = session_id
    if clicked_url is not None:
        body["clickedUrl"] = clicked_url
    if referrer_url is not None:
        body["referrerUrl"] = referrer_url
    if user_agent is not None:
        body["userAgent"] = user_agent
    if source is not None:
        body["source"] = source
    return body


def registration_body(
    *,
    click_id: str,
    email: str | None = None,
    customer_id: str | None = None,
    customer_name: str | None = None,
) -> dict[str, Any]:
    """``POST /registration``: the lead attributed by the ``affy_click_id`` cookie's value.
    Optional fields that are None are left out."""
    # Built key by key rather than filtered afterwards: the decorators call this on every
    # decorated signup (docs/benchmarks/conversions.md).
    body: dict[str, Any] = {"clickId": _require("click_id", click_id)}
    if email is not None:
        body["email"] = email
    if customer_id is not None:
        body["customerId"] = str(customer_id)
    if customer_name is not None:
        body["customerName"] = customer_name
    return body


def registration_lead_body(
    client_id: int,
    *,
    session_id: str,
    customer_email: str | None = None,
    customer_name: str | None = None,
) -> dict[str, Any]:
    """``POST /lead/registration``: the registration lead attributed by session id."""
    body: dict[str, Any] = {"clientId": client_id, "leadType": "REGISTRATION"}
    if customer_email is not None:
        body["customerEmail"] = customer_email
    if customer_name is not None:
        body["customerName"] = customer_name
    body["sessionId"] = _require("session_id", session_id)
    return body


def payment_body(
    client_id: int,
    *,
    session_id: str,
    lead_value: Decimal,
    customer_email: str | None = None,
) -> dict[str, Any]:
    """``POST /lead/payment``: the payment lead by session id; ``lead_value`` is a Decimal
    from :func:`lead_value`, sent as an exact JSON number (``99.00``)."""
    body: dict[str, Any] = {"clientId": client_id, "leadType": "PAYMENT"}
    if customer_email is not None:
        body["customerEmail"] = customer_email
    body["leadValue"] = lead_value
    body["sessionId"] = _require("session_id", session_id)
    return body
