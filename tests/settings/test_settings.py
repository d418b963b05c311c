"""Settings parsing and validation, table-driven."""

from __future__ import annotations

import logging

import pytest

from affy_middleware import AffyConfigError, Settings
from affy_middleware._settings import ENV_VARS, warn_if_inactive


@pytest.mark.parametrize(
    ("environ", "field", "expected"),
    [
        pytest.param({}, "client_id", None, id="client-id-missing"),
        pytest.param({"AFFY_CLIENT_ID": "42"}, "client_id", 42, id="client-id"),
        pytest.param({"AFFY_CLIENT_ID": " 7 "}, "client_id", 7, id="client-id-spaces"),
        pytest.param({"AFFY_CLIENT_ID": ""}, "client_id", None, id="client-id-empty"),
        pytest.param({}, "api_url", "https://api.affy.pro", id="api-url-default"),
        pytest.param(
            {"AFFY_API_URL": "http://127.0.0.1:8765/"},
            "api_url",
            "http://127.0.0.1:8765",
            id="api-url-loopback-http",
        ),
        pytest.param(
            {"AFFY_API_URL": "http://localhost:1"},
            "api_url",
            "http://localhost:1",
            id="api-url-localhost",
        ),
        pytest.param({"AFFY_ENABLED": "no"}, "enabled", False, id="enabled-no"),
        pytest.param({"AFFY_ENABLED": "ON"}, "enabled", True, id="enabled-on"),
        pytest.param(
            {"AFFY_REF_PARAMS": "ref, via ,"}, "ref_params", ("ref", "via"), id="ref-params"
        ),
        pytest.param({"AFFY_ATTRIBUTION_DAYS": "7"}, "attribution_days", 7, id="days"),
        pytest.param({"AFFY_QUEUE_SIZE": "10_000"}, "queue_size", 10000, id="queue-size"),
        pytest.param({"AFFY_TIMEOUT": "0.5"}, "timeout", 0.5, id="timeout"),
        pytest.param({"AFFY_FLUSH_TIMEOUT": "0"}, "flush_timeout", 0.0, id="flush-timeout-0"),
        pytest.param({"AFFY_DELIVERY": "SYNC"}, "delivery", "sync", id="delivery-sync"),
        pytest.param({"AFFY_SPOOL_PATH": "/tmp/x.db"}, "spool_path", "/tmp/x.db", id="spool"),
        pytest.param(
            {"AFFY_COOKIE_DOMAIN": ".example.com"},
            "cookie_domain",
            ".example.com",
            id="cookie-domain",
        ),
        pytest.param({"AFFY_COOKIE_SECURE": "auto"}, "cookie_secure", None, id="secure-auto"),
        pytest.param({"AFFY_COOKIE_SECURE": "1"}, "cookie_secure", True, id="secure-on"),
        pytest.param({}, "flush_on_teardown", None, id="teardown-default"),
        pytest.param({"AFFY_FLUSH_ON_TEARDOWN": "yes"}, "flush_on_teardown", True, id="teardown"),
        pytest.param({"AFFY_FLUSH_ON_TEARDOWN": ""}, "flush_on_teardown", False, id="teardown-0"),
        pytest.param(
            {"AFFY_FLUSH_ON_TEARDOWN": "auto"}, "flush_on_teardown", None, id="teardown-auto"
        ),
    ],
)
def test_parses(environ: dict[str, str], field: str, expected: object) -> None:
    assert getattr(Settings.from_env(environ), field) == expected


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        pytest.param({"AFFY_CLIENT_ID": "abc"}, "AFFY_CLIENT_ID", id="client-id-text"),
        pytest.param({"AFFY_CLIENT_ID": "-3"}, "AFFY_CLIENT_ID", id="client-id-negative"),
        pytest.param(
            {"AFFY_API_URL": "http://api.example.com"}, "AFFY_API_URL", id="http-non-loopback"
        ),
        pytest.param({"AFFY_API_URL": "ftp://x"}, "AFFY_API_URL", id="url-scheme"),
        pytest.param({"AFFY_API_URL": "https://u:p@x.com"}, "AFFY_API_URL", id="url-creds"),
        pytest.param({"AFFY_ENABLED": "maybe"}, "AFFY_ENABLED", id="enabled-word"),
        pytest.param({"AFFY_REF_PARAMS": " , "}, "AFFY_REF_PARAMS", id="ref-params-empty"),
        pytest.param({"AFFY_REF_PARAMS": "a b"}, "AFFY_REF_PARAMS", id="ref-params-space"),
        pytest.param({"AFFY_ATTRIBUTION_DAYS": "0"}, "AFFY_ATTRIBUTION_DAYS", id="days-0"),
        pytest.param({"AFFY_QUEUE_SIZE": "lots"}, "AFFY_QUEUE_SIZE", id="queue-text"),
        pytest.param({"AFFY_TIMEOUT": "nan"}, "AFFY_TIMEOUT", id="timeout-nan"),
        pytest.param({"AFFY_TIMEOUT": "-1"}, "AFFY_TIMEOUT", id="timeout-negative"),
        pytest.param({"AFFY_DELIVERY": "carrier-pigeon"}, "AFFY_DELIVERY", id="delivery"),
        pytest.param({"AFFY_CLICK_COOKIE": "a;b"}, "AFFY_CLICK_COOKIE", id="cookie-name"),
        pytest.param(
            {"AFFY_SESSION_COOKIE": "affy_click_id"}, "AFFY_SESSION_COOKIE", id="cookie-names-clash"
        ),
        pytest.param(
            {"AFFY_COOKIE_DOMAIN": "exa mple.com"}, "AFFY_COOKIE_DOMAIN", id="cookie-domain"
        ),
        pytest.param({"AFFY_API_KEY": "two words"}, "AFFY_API_KEY", id="api-key-space"),
        pytest.param(
            {"AFFY_FLUSH_ON_TEARDOWN": "maybe"}, "AFFY_FLUSH_ON_TEARDOWN", id="teardown-word"
        ),
    ],
)
def test_rejects_with_named_variable(environ: dict[str, str], names: str) -> None:
    with pytest.raises(AffyConfigError) as info:
        Settings.from_env(environ)
    assert names in str(info.value)


def test_keyword_arguments_override_environment() -> None:
    settings = Settings.from_env({"AFFY_CLIENT_ID": "1"}, client_id=2, delivery="sync")
    assert (settings.client_id, settings.delivery) == (2, "sync")


def test_config_mapping_wins_over_environment() -> None:
    settings = Settings.from_mapping(
        {"AFFY_CLIENT_ID": 5, "AFFY_TIMEOUT": "1.5"}, environ={"AFFY_CLIENT_ID": "9"}
    )
    assert (settings.client_id, settings.timeout) == (5, 1.5)


def test_unknown_keyword_is_a_config_error() -> None:
    with pytest.raises(AffyConfigError, match="client_idd"):
        Settings.from_env({}, client_idd=3)


def test_api_key_never_shown() -> None:
    secret = "sk_live_supersecret"
    settings = Settings(client_id=1, api_key=secret)
    assert secret not in repr(settings)
    assert secret not in str(settings)
    assert "api_key='***'" in repr(settings)
    with pytest.raises(AffyConfigError) as info:
        Settings(api_key="sk_live_with space")
    assert "sk_live" not in str(info.value)


def test_active_needs_client_id_enabled_and_delivery() -> None:
    assert Settings(client_id=1).active
    assert not Settings().active
    assert not Settings(client_id=1, enabled=False).active
    assert not Settings(client_id=1, delivery="off").active


def test_missing_client_id_warns_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("affy_middleware._settings._warned_inactive", False)
    with caplog.at_level(logging.WARNING, logger="affy_middleware"):
        warn_if_inactive(Settings())
        warn_if_inactive(Settings())
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "AFFY_CLIENT_ID" in caplog.records[0].message


def test_every_env_var_is_read() -> None:
    assert "AFFY_CLIENT_ID" in ENV_VARS and "AFFY_SPOOL_PATH" in ENV_VARS
    assert all(name.startswith("AFFY_") for name in ENV_VARS)


def test_equal_settings_share_a_hash_and_a_dispatcher_key() -> None:
    one, two = Settings(client_id=1), Settings(client_id=1)
    other = one.replace(client_id=2)
    assert one == two and hash(one) == hash(two)
    assert one != other
    assert {one: "dispatcher"}[two] == "dispatcher"
    assert other not in {one: "dispatcher"}


def test_typed_config_values_are_checked() -> None:
    assert Settings.from_mapping({"AFFY_FLUSH_ON_TEARDOWN": True}).flush_on_teardown is True
    with pytest.raises(AffyConfigError, match="AFFY_FLUSH_ON_TEARDOWN"):
        Settings(flush_on_teardown="yes")  # type: ignore[arg-type]
