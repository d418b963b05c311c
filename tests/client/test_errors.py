"""Every failure is an AffyAPIError subclass carrying AFFY's words (sandbox and MockTransport)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest
from _client_api import SECRET, closed_port_url, do_click, mock_client

from affy_middleware import (
    AffyAPIError,
    AffyAuthError,
    AffyClient,
    AffyNetworkError,
    AffyNotFoundError,
    AffyRateLimitError,
    AffyServerError,
    AffyTimeoutError,
    AffyValidationError,
    Settings,
)
from affy_middleware._wire import Event
from affy_middleware.sandbox import SandboxServer


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


def test_a_redirect_is_not_followed_and_not_retryable() -> None:
    moved = httpx.Response(301, headers={"Location": "https://elsewhere.test/"}, text="")
    with mock_client(lambda request: moved) as affy, pytest.raises(AffyAPIError) as info:
        affy.status("s")
    assert info.value.status_code == 301 and not info.value.retryable
