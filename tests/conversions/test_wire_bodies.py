"""The four AFFY request bodies, pinned against docs/affy-api.md (key names, types, JSON).

| call | request body |
|---|---|
| click | clientId (int), affiliateReference, clickId, sessionId, clickedUrl, referrerUrl,
|         userAgent, source |
| registration | clickId, email, customerId, customerName |
| registration lead by session | clientId, leadType: "REGISTRATION", customerEmail,
|                                customerName, sessionId |
| payment lead | clientId, leadType: "PAYMENT", customerEmail, leadValue (99.00), sessionId |
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from affy_middleware._wire import (
    API_PATHS,
    Event,
    click_body,
    lead_value,
    payment_body,
    registration_body,
    registration_lead_body,
)


def sent(kind: Any, body: dict[str, Any]) -> tuple[str, bytes]:
    event = Event(kind, body)
    return event.path, event.encoded()


def test_click_body() -> None:
    body = click_body(
        42,
        affiliate_reference="abc123",
        click_id="c" * 32,
        session_id="s" * 32,
        clicked_url="https://shop.example/?ref=abc123",
        referrer_url="https://partners.example.com/r/abc123",
        user_agent="Mozilla/5.0",
        source="newsletter",
    )
    path, raw = sent("click", body)
    assert path == "/api/v1/tracking/click"
    assert json.loads(raw) == {
        "clientId": 42,
        "affiliateReference": "abc123",
        "clickId": "c" * 32,
        "sessionId": "s" * 32,
        "clickedUrl": "https://shop.example/?ref=abc123",
        "referrerUrl": "https://partners.example.com/r/abc123",
        "userAgent": "Mozilla/5.0",
        "source": "newsletter",
    }
    assert raw.startswith(b'{"clientId":42,')  # an int, not "42"


def test_registration_body() -> None:
    body = registration_body(
        click_id="c1", email="ann@example.com", customer_id="7", customer_name="Ann"
    )
    path, raw = sent("registration", body)
    assert path == "/api/v1/tracking/registration"
    assert json.loads(raw) == {
        "clickId": "c1",
        "email": "ann@example.com",
        "customerId": "7",
        "customerName": "Ann",
    }
    # Optional fields the view did not give are left out, not sent as null.
    assert registration_body(click_id="c1") == {"clickId": "c1"}


def test_registration_lead_body() -> None:
    body = registration_lead_body(
        42, session_id="s1", customer_email="ann@example.com", customer_name="Ann"
    )
    path, raw = sent("registration_lead", body)
    assert path == "/api/v1/tracking/lead/registration"
    assert json.loads(raw) == {
        "clientId": 42,
        "leadType": "REGISTRATION",
        "customerEmail": "ann@example.com",
        "customerName": "Ann",
        "sessionId": "s1",
    }
    assert registration_lead_body(42, session_id="s1") == {
        "clientId": 42,
        "leadType": "REGISTRATION",
        "sessionId": "s1",
    }


@pytest.mark.parametrize(
    ("amount", "json_number"),
    [
        pytest.param("99.00", b"99.00", id="text"),
        pytest.param(99, b"99.00", id="int"),
        pytest.param(19.99, b"19.99", id="float"),
        pytest.param(Decimal("0.005"), b"0.01", id="rounded-half-up"),
    ],
)
def test_payment_body(amount: Any, json_number: bytes) -> None:
    body = payment_body(
        42, session_id="s1", lead_value=lead_value(amount), customer_email="ann@example.com"
    )
    path, raw = sent("payment", body)
    assert path == "/api/v1/tracking/lead/payment"
    assert raw == (
        b'{"clientId":42,"leadType":"PAYMENT","customerEmail":"ann@example.com",'
        b'"leadValue":' + json_number + b',"sessionId":"s1"}'
    )
    assert json.loads(raw, parse_float=Decimal)["leadValue"] == Decimal(json_number.decode())


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: registration_body(click_id=""), id="registration"),
        pytest.param(lambda: registration_lead_body(1, session_id=" "), id="registration-lead"),
        pytest.param(
            lambda: payment_body(1, session_id="", lead_value=Decimal("1.00")), id="payment"
        ),
    ],
)
def test_a_body_needs_its_id(build: Any) -> None:
    with pytest.raises(ValueError, match="must be a non-empty string"):
        build()


def test_every_body_has_a_path() -> None:
    assert set(API_PATHS) == {"click", "registration", "registration_lead", "payment", "status"}
