"""The ``affy_events`` pytest plugin, exercised the way a user's own test suite uses it
(pytester runs those suites in a subprocess, with the plugin from the entry point)."""

from __future__ import annotations

import pytest

from affy_middleware.sandbox import SandboxServer

pytest_plugins = ["pytester"]


@pytest.fixture
def user_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AFFY_CLIENT_ID", "AFFY_API_URL", "AFFY_SPOOL_PATH", "AFFY_DELIVERY"):
        monkeypatch.delenv(name, raising=False)


USER_APP_TESTS = """
from decimal import Decimal

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from affy_middleware import AffyMiddleware, identify, report_payment, track_registration


@track_registration
def signup(environ, start_response):
    identify(email=Request(environ).form["email"])
    return Response("welcome")(environ, start_response)


def shop(environ, start_response):
    if Request(environ).path == "/signup":
        return signup(environ, start_response)
    return Response("home")(environ, start_response)


@pytest.fixture
def client(affy_events):  # the app is built after the fixture set the test client id
    return Client(AffyMiddleware(shop))


BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"}


def test_visit_then_signup(affy_events, client):
    client.get("/?ref=partner42", headers=BROWSER)
    client.post("/signup", data={"email": "ann@example.com"}, headers=BROWSER)
    assert affy_events.kinds == ["click", "registration"]
    assert affy_events.one("click").body["affiliateReference"] == "partner42"
    assert affy_events.one("registration").body["email"] == "ann@example.com"


def test_explicit_payment(affy_events):
    assert report_payment("99.00", session_id="session-0001") is True
    (body,) = affy_events.bodies("payment")
    assert body["leadValue"] == Decimal("99.00") and body["sessionId"] == "session-0001"


def test_one_explains_a_mismatch(affy_events):
    with pytest.raises(AssertionError, match="exactly one 'payment' event, got 0"):
        affy_events.one("payment")


def test_each_test_starts_empty(affy_events):
    assert list(affy_events) == []
"""


def test_users_assert_on_events_without_a_client_id(
    pytester: pytest.Pytester, user_env: None
) -> None:
    pytester.makepyfile(test_user_app=USER_APP_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=4)


def test_nothing_reaches_affy_while_capturing(
    pytester: pytest.Pytester,
    user_env: None,
    sandbox: SandboxServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AFFY_CLIENT_ID", "7")
    monkeypatch.setenv("AFFY_API_URL", sandbox.url)
    pytester.makepyfile(
        test_no_network="""
        from affy_middleware import flush, report_payment

        def test_capture(affy_events):
            assert report_payment(5, session_id="session-0001") is True
            assert flush(2) is True
            assert affy_events.one("payment").body["clientId"] == 7  # the env's id is kept
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert sandbox.requests() == []


def test_client_id_comes_from_the_ini_option(pytester: pytest.Pytester, user_env: None) -> None:
    pytester.makeini("[pytest]\naffy_client_id = 4242\n")
    pytester.makepyfile(
        test_ini="""
        def test_id(affy_events):
            assert affy_events.settings.client_id == 4242
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_without_the_fixture_the_client_id_is_not_set(
    pytester: pytest.Pytester, user_env: None
) -> None:
    pytester.makepyfile(
        test_plain="""
        import os

        def test_env_untouched():
            assert "AFFY_CLIENT_ID" not in os.environ
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
