"""AffyClient against the real sandbox over HTTP: every call, bad arguments, settings, secrecy."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest
from _client_api import SECRET, do_click

from affy_middleware import (
    AffyAPIError,
    AffyAuthError,
    AffyClient,
    AffyConfigError,
    ClickResult,
    LeadResult,
    PaymentResult,
    RegistrationResult,
    Settings,
    StatusResult,
)
from affy_middleware._wire import Event, click_body
from affy_middleware.sandbox import SandboxServer

# -- every call, sync ----------------------------------------------------------------------


def test_every_call_round_trips_with_camel_case_on_the_wire(
    sandbox: SandboxServer, client: AffyClient
) -> None:
    click = client.click(
        affiliate_reference="abc123",
        click_id="ck_1",
        session_id="sess_1",
        clicked_url="https://shop.example/?ref=abc123",
        referrer_url="https://partner.example/",
        user_agent="Mozilla/5.0",
        source="newsletter",
    )
    assert isinstance(click, ClickResult) and click.success
    assert isinstance(click.click_id, int) and click.session_id == "sess_1"

    reg = client.registration(click_id="ck_1", email="a@b.c", customer_id=42, customer_name="A")
    assert isinstance(reg, RegistrationResult) and reg.click_id == click.click_id
    assert isinstance(reg.lead_id, int)

    lead = client.registration_lead(session_id="sess_1", customer_email="a@b.c")
    assert isinstance(lead, LeadResult) and lead.conversion_source == "TRACKING_API"

    pay = client.payment_lead(session_id="sess_1", lead_value=99, customer_email="a@b.c")
    assert isinstance(pay, PaymentResult) and pay.success
    assert str(pay.lead_value) == "99.00"

    status = client.status("sess_1")
    assert status == StatusResult(
        session_id="sess_1",
        has_affiliate=True,
        affiliate_reference="abc123",
        click_id="ck_1",
        clicked_at=status.clicked_at,
    )
    assert status.clicked_at is not None

    bodies = {event["kind"]: event["body"] for event in sandbox.events()}
    assert bodies["click"] == {
        "clientId": 1,
        "affiliateReference": "abc123",
        "clickId": "ck_1",
        "sessionId": "sess_1",
        "clickedUrl": "https://shop.example/?ref=abc123",
        "referrerUrl": "https://partner.example/",
        "userAgent": "Mozilla/5.0",
        "source": "newsletter",
    }
    assert bodies["registration"] == {
        "clickId": "ck_1",
        "email": "a@b.c",
        "customerId": "42",
        "customerName": "A",
    }
    assert bodies["registration_lead"] == {
        "clientId": 1,
        "leadType": "REGISTRATION",
        "customerEmail": "a@b.c",
        "sessionId": "sess_1",
    }
    assert str(bodies["payment"]["leadValue"]) == "99.00"  # a JSON number with cents
    assert bodies["payment"]["leadType"] == "PAYMENT"


@pytest.mark.parametrize(
    ("value", "sent"),
    [(19.99, "19.99"), ("0.1", "0.10"), (Decimal("1234.5"), "1234.50"), (0, "0.00")],
)
def test_lead_value_keeps_its_cents(
    sandbox: SandboxServer, client: AffyClient, value: object, sent: str
) -> None:
    result = client.payment_lead(session_id="s", lead_value=value)
    assert str(result.lead_value) == sent
    assert str(sandbox.events("payment")[0]["body"]["leadValue"]) == sent


def test_idempotency_key_is_sent_and_a_replay_returns_the_same_result(
    sandbox: SandboxServer, client: AffyClient
) -> None:
    first = client.payment_lead(session_id="s", lead_value=5, idempotency_key="evt-1")
    again = client.payment_lead(session_id="s", lead_value=5, idempotency_key="evt-1")
    assert again == first
    assert sandbox.events("payment")[0]["idempotency_key"] == "evt-1"
    assert len(sandbox.events("payment")) == 1 and sandbox.duplicates() == 1


def test_send_event_posts_the_body_with_the_event_id(
    sandbox: SandboxServer, client: AffyClient
) -> None:
    event = Event("click", click_body(1, affiliate_reference="r", click_id="c", session_id="s"))
    answer = client.send_event(event)
    assert answer["success"] is True and isinstance(answer["clickId"], int)
    (recorded,) = sandbox.events("click")
    assert recorded["idempotency_key"] == event.event_id
    assert recorded["body"] == event.body
    assert client.send_event(event) == answer  # a retry is answered, not recorded twice
    assert len(sandbox.events()) == 1


def test_bearer_key_goes_on_every_call(sandbox: SandboxServer) -> None:
    with AffyClient(sandbox.settings(api_key="wrong-key")) as affy:
        with pytest.raises(AffyAuthError) as info:
            do_click(affy)
        assert info.value.status_code == 401
        assert info.value.message == "Invalid or missing API key"
        assert info.value.error == "Unauthorized"
    assert sandbox.events() == []


def test_status_without_a_key_is_an_auth_error(sandbox: SandboxServer) -> None:
    with AffyClient(Settings(client_id=1, api_url=sandbox.url)) as affy:
        with pytest.raises(AffyAuthError):
            affy.status("s")
        assert do_click(affy).success  # tracking POSTs identify by clientId


# -- bad arguments never reach the network -----------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda a: a.payment_lead(session_id="s", lead_value=-1), id="negative"),
        pytest.param(lambda a: a.payment_lead(session_id="s", lead_value=float("nan")), id="nan"),
        pytest.param(lambda a: a.payment_lead(session_id="s", lead_value="abc"), id="text"),
        pytest.param(lambda a: a.payment_lead(session_id="", lead_value=1), id="no-session"),
        pytest.param(lambda a: a.registration_lead(session_id=" "), id="blank-session"),
        pytest.param(lambda a: a.status(""), id="status-empty"),
        pytest.param(lambda a: a.registration(click_id=""), id="no-click-id"),
        pytest.param(lambda a: do_click(a, affiliate_reference=""), id="no-affiliate"),
        pytest.param(lambda a: do_click(a, idempotency_key="k" * 300), id="long-key"),
        pytest.param(lambda a: do_click(a, idempotency_key="bad\nkey"), id="newline-key"),
    ],
)
def test_invalid_arguments_raise_value_error_before_sending(
    sandbox: SandboxServer, client: AffyClient, call: Any
) -> None:
    with pytest.raises(ValueError):
        call(client)
    assert sandbox.requests() == []


def test_calls_needing_a_client_id_say_so(sandbox: SandboxServer) -> None:
    with AffyClient(Settings(api_url=sandbox.url, api_key=SECRET)) as affy:
        with pytest.raises(AffyConfigError, match="AFFY_CLIENT_ID"):
            do_click(affy)
        assert affy.status("s").has_affiliate is False  # status needs no client id


# -- configuration, lifecycle, secrecy ---------------------------------------------------------


def test_settings_default_to_the_environment_and_keywords_win(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AFFY_CLIENT_ID", "7")
    monkeypatch.setenv("AFFY_API_URL", sandbox.url)
    monkeypatch.setenv("AFFY_API_KEY", SECRET)
    with AffyClient() as affy:
        assert affy.settings.client_id == 7 and affy.status("s").has_affiliate is False
    with AffyClient(client_id=9, timeout=1.5) as affy:
        assert affy.settings.client_id == 9 and affy.settings.timeout == 1.5
        assert do_click(affy).success
    assert sandbox.events()[0]["body"]["clientId"] == 9
    with AffyClient(sandbox.settings(), api_key="other") as affy, pytest.raises(AffyAuthError):
        affy.status("s")
    with pytest.raises(AffyConfigError):
        AffyClient(api_url="http://affy.example.com")


def test_context_manager_closes_the_http_client(sandbox: SandboxServer) -> None:
    with AffyClient(sandbox.settings()) as affy:
        do_click(affy)
    with pytest.raises(RuntimeError):
        do_click(affy, click_id="ck_2")


def test_the_key_never_shows_in_repr_errors_or_logs(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    with AffyClient(sandbox.settings()) as affy:
        texts += [repr(affy), str(affy), repr(affy.settings)]
        do_click(affy)
        affy.status("sess_1")
        failures: list[AffyAPIError] = []
        for faults in ({"rate_limit": 1}, {"error_rate": 1.0}, {"latency": 2.0}):
            sandbox.set_faults(**faults)
            try:
                with AffyClient(sandbox.settings(timeout=0.2)) as quick:
                    quick.status("s")
            except AffyAPIError as exc:
                failures.append(exc)
            sandbox.clear_faults()
        with AffyClient(sandbox.settings(api_key="wrong-secret-value")) as wrong:
            try:
                wrong.status("s")
            except AffyAPIError as exc:
                failures.append(exc)
                assert "wrong-secret-value" not in str(exc) + repr(exc)
        assert len(failures) == 4
        texts += [str(exc) for exc in failures] + [repr(exc) for exc in failures]
    texts += [record.getMessage() for record in caplog.records]
    assert any("HTTP Request" in record.getMessage() for record in caplog.records)
    assert not [text for text in texts if SECRET in text]
