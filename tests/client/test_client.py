"""AffyClient and AsyncAffyClient against the real sandbox over HTTP."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from affy_middleware import (
    AffyAPIError,
    AffyAuthError,
    AffyClient,
    AffyConfigError,
    AffyNetworkError,
    AffyNotFoundError,
    AffyRateLimitError,
    AffyServerError,
    AffyTimeoutError,
    AffyValidationError,
    AsyncAffyClient,
    ClickResult,
    LeadResult,
    PaymentResult,
    RegistrationResult,
    Settings,
    StatusResult,
)
from affy_middleware._wire import Event, click_body
from affy_middleware.sandbox import SandboxServer

SECRET = "test-key"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[AffyClient]:
    with AffyClient(sandbox.settings()) as affy:
        yield affy


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def do_click(affy: AffyClient, **changes: Any) -> ClickResult:
    fields: dict[str, Any] = {
        "affiliate_reference": "abc123",
        "click_id": "ck_1",
        "session_id": "sess_1",
        **changes,
    }
    return affy.click(**fields)


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


# -- errors ----------------------------------------------------------------------------------


def test_400_is_a_validation_error_with_affys_message(client: AffyClient) -> None:
    with pytest.raises(AffyValidationError) as info:
        client.send_event(Event("click", {"clientId": "one"}))
    assert info.value.status_code == 400 and "clientId" in info.value.message
    assert not info.value.retryable


def test_404_is_a_not_found_error(client: AffyClient) -> None:
    with pytest.raises(AffyNotFoundError) as info:
        client.registration(click_id="never-clicked")
    assert info.value.status_code == 404 and "clickId" in str(info.value)


def test_429_carries_retry_after(sandbox: SandboxServer, client: AffyClient) -> None:
    sandbox.set_faults(rate_limit=1, retry_after=3)
    with pytest.raises(AffyRateLimitError) as info:
        do_click(client)
    assert info.value.status_code == 429 and info.value.retry_after == 3.0
    assert info.value.retryable
    assert do_click(client).success


@pytest.mark.parametrize("status", [500, 503, 408])
def test_5xx_and_408_are_server_errors(
    sandbox: SandboxServer, client: AffyClient, status: int
) -> None:
    sandbox.set_faults(error_rate=1.0, error_status=status, retry_after=1.5)
    with pytest.raises(AffyServerError) as info:
        do_click(client)
    assert info.value.status_code == status and info.value.retryable
    assert info.value.retry_after == 1.5 and info.value.message


def test_outage_is_a_server_error_without_retry_after(
    sandbox: SandboxServer, client: AffyClient
) -> None:
    sandbox.set_faults(outage_seconds=60)
    with pytest.raises(AffyServerError) as info:
        client.status("s")
    assert info.value.status_code == 503 and info.value.retry_after is None


def test_timeout_is_a_timeout_error(sandbox: SandboxServer) -> None:
    sandbox.set_faults(latency=5)
    with AffyClient(sandbox.settings(timeout=0.2)) as affy, pytest.raises(AffyTimeoutError) as info:
        do_click(affy)
    assert info.value.retryable and info.value.status_code is None
    assert "0.2s" in str(info.value)


def test_connection_refused_is_a_network_error() -> None:
    settings = Settings(client_id=1, api_url=closed_port_url(), api_key=SECRET)
    with AffyClient(settings) as affy, pytest.raises(AffyNetworkError) as info:
        do_click(affy)
    assert not isinstance(info.value, AffyTimeoutError)
    assert info.value.retryable and "could not reach AFFY" in str(info.value)


def mock_client(handler: Any) -> AffyClient:
    settings = Settings(client_id=1, api_url="https://api.affy.test", api_key=SECRET)
    return AffyClient(settings, transport=httpx.MockTransport(handler))


def test_non_json_error_body_and_http_date_retry_after() -> None:
    # The sandbox always answers JSON with delta-seconds; a proxy in front of AFFY may not.
    when = datetime.now(timezone.utc) + timedelta(seconds=120)
    reply = httpx.Response(
        503, text="<html>Bad gateway</html>", headers={"Retry-After": format_datetime(when, True)}
    )
    with mock_client(lambda request: reply) as affy, pytest.raises(AffyServerError) as info:
        affy.status("s")
    assert info.value.message == "<html>Bad gateway</html>"
    assert info.value.retry_after is not None and 100 < info.value.retry_after <= 120


def test_an_error_that_echoes_the_key_is_redacted() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        given = request.headers["Authorization"]
        return httpx.Response(401, json={"error": given, "message": f"bad key {given}"})

    with mock_client(echo) as affy, pytest.raises(AffyAuthError) as info:
        affy.status("s")
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)
    assert "***" in info.value.message


def test_a_key_too_short_to_be_real_does_not_mangle_messages() -> None:
    """A one-letter key would be in every other word: only keys of 8+ characters are cut."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "unauthorized", "message": "bad key e"})

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused by peer", request=request)

    settings = Settings(client_id=1, api_url="https://api.affy.test", api_key="e")
    answering = AffyClient(settings, transport=httpx.MockTransport(answer))
    with answering as affy, pytest.raises(AffyAuthError) as auth:
        affy.status("s")
    assert (auth.value.message, auth.value.error) == ("bad key e", "unauthorized")
    refusing = AffyClient(settings, transport=httpx.MockTransport(unreachable))
    with refusing as affy, pytest.raises(AffyNetworkError) as network:
        affy.status("s")
    assert "connection refused by peer" in str(network.value)
    assert "***" not in str(network.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), ("0.5", 0.5), ("-4", 0.0), ("soon", None), ("", None), (None, None)],
)
def test_retry_after_in_seconds(value: str | None, expected: float | None) -> None:
    headers = {} if value is None else {"Retry-After": value}
    reply = httpx.Response(429, json={"message": "slow down"}, headers=headers)
    with mock_client(lambda request: reply) as affy, pytest.raises(AffyRateLimitError) as info:
        affy.status("s")
    assert info.value.retry_after == expected


def test_a_2xx_without_json_is_an_empty_answer() -> None:
    with mock_client(lambda request: httpx.Response(200, text="OK")) as affy:
        assert affy.send_event(Event("click", {"clientId": 1})) == {}
        assert affy.status("s").has_affiliate is False


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


# -- async -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_every_call(sandbox: SandboxServer) -> None:
    async with AsyncAffyClient(sandbox.settings()) as affy:
        click = await affy.click(affiliate_reference="abc", click_id="ck", session_id="se")
        assert isinstance(click.click_id, int)
        reg = await affy.registration(click_id="ck", email="a@b.c")
        assert reg.click_id == click.click_id
        lead = await affy.registration_lead(session_id="se", customer_name="A")
        assert lead.success
        pay = await affy.payment_lead(session_id="se", lead_value="10.5")
        assert str(pay.lead_value) == "10.50"
        status = await affy.status("se")
        assert status.affiliate_reference == "abc" and status.click_id == "ck"
        event = Event(
            "click", click_body(1, affiliate_reference="x", click_id="c2", session_id="s")
        )
        assert (await affy.send_event(event))["success"] is True
        assert SECRET not in repr(affy)
    kinds = [e["kind"] for e in sandbox.events()]
    assert kinds == ["click", "registration", "registration_lead", "payment", "click"]
    assert sandbox.events()[-1]["idempotency_key"] == event.event_id


@pytest.mark.anyio
async def test_async_errors(sandbox: SandboxServer) -> None:
    async with AsyncAffyClient(sandbox.settings(timeout=0.3)) as affy:
        with pytest.raises(AffyNotFoundError):
            await affy.registration(click_id="unknown")
        with pytest.raises(AffyValidationError):
            await affy.send_event(Event("payment", {"leadValue": "x"}))
        sandbox.set_faults(rate_limit=1, retry_after=2)
        with pytest.raises(AffyRateLimitError) as info:
            await affy.status("s")
        assert info.value.retry_after == 2.0
        sandbox.set_faults(error_rate=1.0)
        with pytest.raises(AffyServerError):
            await affy.status("s")
        sandbox.set_faults(latency=5)
        with pytest.raises(AffyTimeoutError):
            await affy.status("s")
        sandbox.clear_faults()
        with pytest.raises(ValueError):
            await affy.payment_lead(session_id="s", lead_value=-2)
    async with AsyncAffyClient(sandbox.settings(api_key="nope")) as affy:
        with pytest.raises(AffyAuthError):
            await affy.status("s")
    async with AsyncAffyClient(sandbox.settings(api_url=closed_port_url())) as affy:
        with pytest.raises(AffyNetworkError):
            await affy.status("s")


def test_a_redirect_is_not_followed_and_not_retryable() -> None:
    moved = httpx.Response(301, headers={"Location": "https://elsewhere.test/"}, text="")
    with mock_client(lambda request: moved) as affy, pytest.raises(AffyAPIError) as info:
        affy.status("s")
    assert info.value.status_code == 301 and not info.value.retryable
