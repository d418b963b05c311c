"""The five Tracking API calls: validate the body, link attribution, record, answer."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from .._wire import encode_body
from ._store import Accepted, Store
from ._validate import (
    MAX_STRING,
    BadRequest,
    optional_str,
    require_amount,
    require_int,
    require_literal,
    require_str,
)

__all__ = ["click", "registration", "registration_lead", "payment", "status", "json_text"]


def json_text(body: dict[str, Any]) -> str:
    return encode_body(body).decode("utf-8")


def click(store: Store, body: dict[str, Any], raw: str, key: str | None) -> Accepted:
    require_int(body, "clientId")
    affiliate = require_str(body, "affiliateReference")
    click_id = require_str(body, "clickId")
    session_id = require_str(body, "sessionId")
    for name in ("clickedUrl", "referrerUrl", "userAgent", "source"):
        optional_str(body, name)
    return store.record(
        "click",
        idempotency_key=key,
        body=raw,
        affiliate_reference=affiliate,
        session_id=session_id,
        click_id=click_id,
        respond=lambda event_id: json_text(
            {
                "success": True,
                "clickId": event_id,
                "sessionId": session_id,
                "message": "Click recorded",
            }
        ),
    )


def _customer_id(body: dict[str, Any]) -> None:
    value = body.get("customerId")
    if isinstance(value, int) and not isinstance(value, bool):
        return
    optional_str(body, "customerId")


def registration(store: Store, body: dict[str, Any], raw: str, key: str | None) -> Accepted:
    ref = body.get("clickId")
    if isinstance(ref, int) and not isinstance(ref, bool):
        found = store.find_click(ref) if 0 < ref < 2**63 else None
    else:
        found = store.find_click(require_str(body, "clickId"))
    if found is None:
        raise BadRequest(
            f"clickId: unknown click id {str(ref)[:64]!r} (record the click first)",
            field="clickId",
            status=404,
        )
    optional_str(body, "email")
    optional_str(body, "customerName")
    _customer_id(body)
    return store.record(
        "registration",
        idempotency_key=key,
        body=raw,
        affiliate_reference=found["affiliate_reference"],
        session_id=found["session_id"],
        click_id=found["click_id"],
        respond=lambda event_id: json_text(
            {
                "success": True,
                "leadId": event_id,
                "clickId": found["id"],
                "message": "Registration recorded",
            }
        ),
    )


def _lead(
    store: Store,
    kind: str,
    body: dict[str, Any],
    raw: str,
    key: str | None,
    value: Decimal | None,
) -> Accepted:
    session_id = require_str(body, "sessionId")
    latest = store.latest_click(session_id)
    affiliate = None if latest is None else latest["affiliate_reference"]
    message = (
        "Lead recorded" if affiliate else "Lead recorded (no affiliate click for this session)"
    )
    return store.record(
        kind,
        idempotency_key=key,
        body=raw,
        affiliate_reference=affiliate,
        session_id=session_id,
        click_id=None if latest is None else latest["click_id"],
        lead_value=value,
        respond=lambda event_id: json_text(
            {
                "success": True,
                "leadId": event_id,
                "leadValue": value,
                "conversionSource": "TRACKING_API",
                "message": message,
            }
        ),
    )


def registration_lead(store: Store, body: dict[str, Any], raw: str, key: str | None) -> Accepted:
    require_int(body, "clientId")
    require_literal(body, "leadType", "REGISTRATION")
    optional_str(body, "customerEmail")
    optional_str(body, "customerName")
    return _lead(store, "registration_lead", body, raw, key, None)


def payment(store: Store, body: dict[str, Any], raw: str, key: str | None) -> Accepted:
    require_int(body, "clientId")
    require_literal(body, "leadType", "PAYMENT")
    optional_str(body, "customerEmail")
    value = require_amount(body, "leadValue")
    return _lead(store, "payment", body, raw, key, value)


def status(store: Store, session_id: str) -> str:
    if not session_id.strip() or len(session_id) > MAX_STRING:
        raise BadRequest(
            "sessionId: must be a non-empty string of at most 2048 characters", field="sessionId"
        )
    latest = store.latest_click(session_id)
    if latest is None:
        return json_text(
            {
                "sessionId": session_id,
                "hasAffiliate": False,
                "affiliateReference": None,
                "clickId": None,
                "clickedAt": None,
            }
        )
    clicked_at = latest["received_at"]
    return json_text(
        {
            "sessionId": session_id,
            "hasAffiliate": True,
            "affiliateReference": latest["affiliate_reference"],
            "clickId": latest["click_id"],
            "clickedAt": _iso(clicked_at),
        }
    )


def _iso(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
