"""What goes over the wire: the API paths (one table), the queued ``Event`` and one builder
per AFFY request body (click, registration, registration lead by session, payment)."""

from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, Literal

from ._process import PerProcess

__all__ = [
    "API_PATHS",
    "EventKind",
    "Event",
    "encode_body",
    "decode_body",
    "lead_value",
    "click_body",
    "checked_click_body",
    "registration_body",
    "registration_lead_body",
    "payment_body",
]

EventKind = Literal["click", "registration", "registration_lead", "payment"]

#: Every AFFY path in one place. AFFY's docs cut the two lead paths short; one edit here
#: fixes them everywhere (client, sandbox, tests).
API_PATHS: Final[dict[str, str]] = {
    "click": "/api/v1/tracking/click",
    "registration": "/api/v1/tracking/registration",
    "registration_lead": "/api/v1/tracking/lead/registration",
    "payment": "/api/v1/tracking/lead/payment",
    "status": "/api/v1/tracking/status/{session_id}",
}


def _encode_value(value: Any) -> str:
    if isinstance(value, Decimal):
        # A JSON number with its cents as written: Decimal("99.00") -> 99.00, never 99.0000001.
        return format(value, "f")
    if isinstance(value, dict):
        return _encode_object(value)
    return json.dumps(value, ensure_ascii=False)


def _encode_object(body: dict[str, Any]) -> str:
    return "{" + ",".join(f"{json.dumps(k)}:{_encode_value(v)}" for k, v in body.items()) + "}"


def encode_body(body: dict[str, Any]) -> bytes:
    """Serialise a JSON body; ``Decimal`` values become exact JSON numbers (``99.00``)."""
    return _encode_object(body).encode("utf-8")


def decode_body(raw: bytes | str) -> dict[str, Any]:
    """The inverse of :func:`encode_body`: JSON numbers with a fraction come back as Decimal."""
    value = json.loads(raw, parse_float=Decimal)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


class _IdSource:
    """One process's event ids: 64 random bits and a counter."""

    __slots__ = ("prefix", "counter")

    def __init__(self, parent: _IdSource | None = None) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count(1)


#: Event ids: 64 random bits drawn once per process and a counter, 32 hex characters like
#: a UUID's hex. Unique across processes and restarts (a collision needs two processes to
#: draw the same 64 bits), without an ``os.urandom`` call per event as ``uuid.uuid4()``
#: would make (docs/benchmarks/conversions.md). Found by pid, not renewed by an at-fork
#: hook: uWSGI forks without running those, and the ``Event`` default factory draws an id
#: before any backend could check the pid.
_ids: PerProcess[_IdSource] = PerProcess(_IdSource)


def new_event_id() -> str:
    """A fresh event id (``Idempotency-Key``): 32 hex characters, unique across processes
    and forks (with or without at-fork hooks)."""
    slot = _ids.slot
    ids = slot.value if slot.pid == os.getpid() else _ids.renew()
    return f"{ids.prefix}{next(ids.counter):016x}"  # next() on a count is atomic (GIL)


@dataclass(slots=True)
class Event:
    """One tracking call waiting to be delivered.

    ``body`` is the JSON body exactly as AFFY expects it (camelCase keys). ``event_id`` is
    made once, at enqueue time, and sent as ``Idempotency-Key`` on every attempt.
    ``order_key`` groups the events of one visit so they are delivered in order.
    ``expects_click``: a lead of a visit that came with an affiliate click, which must not
    reach AFFY before that click, whichever process sends it (``delivery/clicks.py``).
    """

    kind: EventKind
    body: dict[str, Any]
    order_key: str | None = None
    event_id: str = field(default_factory=new_event_id)
    created_at: float = field(default_factory=time.time)
    expects_click: bool = False

    @property
    def path(self) -> str:
        return API_PATHS[self.kind]

    def encoded(self) -> bytes:
        return encode_body(self.body)

    def to_record(self) -> bytes:
        """A self-contained JSON record (for the spool)."""
        return encode_body(
            {
                "kind": self.kind,
                "eventId": self.event_id,
                "orderKey": self.order_key,
                "createdAt": self.created_at,
                "body": self.body,
                "expectsClick": self.expects_click,
            }
        )

    @classmethod
    def from_record(cls, raw: bytes | str) -> Event:
        data = decode_body(raw)
        return cls(
            kind=data["kind"],
            body=data["body"],
            order_key=data.get("orderKey"),
            event_id=data["eventId"],
            created_at=float(data["createdAt"]),
            expects_click=data.get("expectsClick") is True,
        )


# -- request bodies, shared by the client, the middleware and the decorators ------------

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


def _compact(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


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
