"""The Flask extension and the example shop, in-process and against the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask, request

from affy_middleware import (
    AffyConfigError,
    AffyMiddleware,
    Settings,
    current_visit,
    delivery,
    identify,
    track_registration,
)
from affy_middleware._wire import Event
from affy_middleware.flask import Affy
from affy_middleware.sandbox import SandboxServer
from examples.flask_shop import create_app

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
UA = {"User-Agent": CHROME}


@pytest.fixture
def events() -> Iterator[list[Event]]:
    with delivery.capture() as captured:
        yield captured


def make_app(**config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(config)

    @app.get("/")
    def index() -> str:
        visit = current_visit()
        return visit.affiliate_reference or "-" if visit else "none"

    @app.post("/signup")
    @track_registration
    def signup() -> tuple[str, int]:
        return "created", 201

    @app.post("/async-signup")
    @track_registration
    async def async_signup() -> str:
        identify(email="async@example.com")
        return "ok"

    return app


# -- the extension -------------------------------------------------------------------------


def test_reads_app_config_and_registers(events: list[Event]) -> None:
    app = make_app(AFFY_CLIENT_ID=8, AFFY_REF_PARAMS="partner", AFFY_API_URL="http://127.0.0.1:9")
    affy = Affy(app)
    assert app.extensions["affy"] is affy
    assert isinstance(app.wsgi_app, AffyMiddleware)
    assert affy.settings is not None and affy.settings.client_id == 8
    assert affy.settings.ref_params == ("partner",)
    assert app.config["AFFY_COOKIE_DOMAIN"] is None  # every key is present in app.config
    client = app.test_client()
    response = client.get("/?partner=p1&ref=ignored", headers=UA)
    assert response.text == "p1" and len(response.headers.getlist("Set-Cookie")) == 3
    assert client.post("/signup", headers=UA).status_code == 201
    assert [e.kind for e in events] == ["click", "registration"]


def test_environment_fallback_and_keyword_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFFY_CLIENT_ID", "12")
    monkeypatch.setenv("AFFY_ATTRIBUTION_DAYS", "7")
    app = make_app(AFFY_ATTRIBUTION_DAYS=14)
    affy = Affy(app, cookie_domain="shop.test")
    assert affy.settings is not None
    assert (affy.settings.client_id, affy.settings.attribution_days) == (12, 14)
    assert affy.settings.cookie_domain == "shop.test"


def test_init_app_factory_and_double_registration() -> None:
    affy = Affy(client_id=1)
    app = make_app()
    affy.init_app(app)
    with pytest.raises(RuntimeError, match="already registered"):
        affy.init_app(app)
    with pytest.raises(RuntimeError, match="already registered"):
        Affy(app)
    manual = make_app()
    manual.wsgi_app = AffyMiddleware(manual.wsgi_app, client_id=1)  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="already registered"):
        Affy(manual)


@pytest.mark.parametrize(
    "config",
    [
        {"AFFY_CLIENT_ID": "abc"},
        {"AFFY_API_URL": "http://affy.example.com"},
        {"AFFY_FLUSH_ON_TEARDOWN": "maybe", "AFFY_CLIENT_ID": 1},
    ],
)
def test_bad_config_fails_at_set_up(config: dict[str, Any]) -> None:
    with pytest.raises(AffyConfigError):
        Affy(make_app(**config))


def test_async_view_under_flask(events: list[Event]) -> None:
    app = make_app(AFFY_CLIENT_ID=1, AFFY_API_URL="http://127.0.0.1:9")
    Affy(app)
    client = app.test_client()
    client.get("/?ref=aff", headers=UA)
    assert client.post("/async-signup", headers=UA).text == "ok"
    assert [(e.kind, e.body.get("email")) for e in events] == [
        ("click", None),
        ("registration", "async@example.com"),
    ]


def test_flush_on_teardown_delivers_before_the_response(sandbox: SandboxServer) -> None:
    app = make_app(AFFY_FLUSH_ON_TEARDOWN="yes")
    Affy(app, settings=sandbox.settings())
    response = app.test_client().get("/?ref=teardown", headers=UA)
    assert response.status_code == 200
    # No flush() here: the teardown already waited for delivery.
    assert [e["affiliate_reference"] for e in sandbox.events("click")] == ["teardown"]


def test_no_teardown_flush_unless_asked() -> None:
    app = make_app()
    Affy(app, client_id=1)
    assert not app.teardown_request_funcs.get(None)
    sync = make_app(AFFY_DELIVERY="sync")
    Affy(sync, client_id=1)
    assert sync.teardown_request_funcs.get(None)


@pytest.mark.parametrize(
    ("settings", "config", "flushes"),
    [
        pytest.param(Settings(client_id=1, flush_on_teardown=True), {}, True, id="field"),
        pytest.param(
            Settings(client_id=1, flush_on_teardown=False),
            {"AFFY_FLUSH_ON_TEARDOWN": True},
            False,
            id="field-wins-over-config",
        ),
        pytest.param(
            Settings(client_id=1), {"AFFY_FLUSH_ON_TEARDOWN": "1"}, True, id="config-if-unset"
        ),
        pytest.param(Settings(client_id=1, delivery="sync"), {}, True, id="sync"),
    ],
)
def test_flush_on_teardown_with_given_settings(
    settings: Settings, config: dict[str, Any], flushes: bool
) -> None:
    app = make_app(**config)
    Affy(app, settings=settings)
    assert bool(app.teardown_request_funcs.get(None)) is flushes


def test_flush_on_teardown_keyword_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFFY_FLUSH_ON_TEARDOWN", "on")
    from_env = make_app()
    assert Affy(from_env, client_id=1).settings.flush_on_teardown is True  # type: ignore[union-attr]
    assert from_env.teardown_request_funcs.get(None)
    keyword = make_app()
    Affy(keyword, client_id=1, flush_on_teardown=False)
    assert not keyword.teardown_request_funcs.get(None)


# -- the example shop -------------------------------------------------------------------------


def test_shop_flow_in_process(events: list[Event]) -> None:
    app = create_app(Settings(client_id=1, api_url="http://127.0.0.1:9"))
    client = app.test_client()
    assert client.get("/?ref=aff_demo&utm_source=blog", headers=UA).status_code == 200
    assert b"Referred by aff_demo" in client.get("/pricing", headers=UA).data
    assert client.get("/signup?plan=team", headers=UA).status_code == 200
    bad = client.post("/signup", data={"plan": "team", "email": "nope"}, headers=UA)
    assert bad.status_code == 400
    ok = client.post(
        "/signup", data={"plan": "team", "email": "Ann@Example.com", "name": "Ann"}, headers=UA
    )
    assert ok.status_code == 302 and ok.location == "/checkout"
    assert client.post("/checkout", data={"card": "12"}, headers=UA).status_code == 402
    paid = client.post("/checkout", data={"card": "4242 4242 4242 4242"}, headers=UA)
    assert paid.status_code == 302
    assert b"Thank you, Ann" in client.get("/thanks", headers=UA).data
    click, registration, payment = events
    assert (click.kind, registration.kind, payment.kind) == ("click", "registration", "payment")
    assert registration.body == {
        "clickId": click.body["clickId"],
        "email": "ann@example.com",
        "customerId": "1",
        "customerName": "Ann",
    }
    assert payment.body["sessionId"] == click.body["sessionId"]
    assert payment.body["leadValue"] == Decimal("99.00")


def test_shop_visitor_without_referral_sends_nothing(events: list[Event]) -> None:
    client = create_app(Settings(client_id=1, api_url="http://127.0.0.1:9")).test_client()
    client.post("/signup", data={"email": "solo@example.com", "name": "Solo"}, headers=UA)
    client.post("/checkout", data={"card": "4242424242424242"}, headers=UA)
    assert events == []


def test_shop_against_the_sandbox(sandbox: SandboxServer) -> None:
    app = create_app({"AFFY_API_URL": sandbox.url, "AFFY_CLIENT_ID": 1, "AFFY_API_KEY": "test-key"})
    client = app.test_client()
    client.get("/?via=partner42", headers=UA)
    client.post(
        "/signup", data={"plan": "pro", "email": "e2e@example.com", "name": "E"}, headers=UA
    )
    client.post("/checkout", data={"card": "4242424242424242"}, headers=UA)
    settings = app.extensions["affy"].settings
    assert delivery.backend_for(settings).flush(10)
    kinds = [(e["kind"], e["affiliate_reference"]) for e in sandbox.events()]
    assert kinds == [
        ("click", "partner42"),
        ("registration", "partner42"),
        ("payment", "partner42"),
    ]
    assert sandbox.events("payment")[0]["body"]["leadValue"] == Decimal("49.00")


def test_form_fields_without_identify(events: list[Event]) -> None:
    app = Flask(__name__)
    Affy(app, client_id=1, api_url="http://127.0.0.1:9")

    @app.post("/join")
    @track_registration
    def join() -> str:
        return "joined " + request.form["username"]

    @app.post("/api/join")
    @track_registration
    def api_join() -> dict[str, bool]:
        return {"ok": True}

    client = app.test_client()
    client.get("/?ref=a", headers=UA)
    form = {"username": "u", "email": "form@example.com", "full_name": "Form User"}
    client.post("/join", data=form, headers=UA)
    client.post("/api/join", json={"email": "json@example.com", "user_id": 77}, headers=UA)
    assert [e.body for e in events[1:]] == [
        {
            "clickId": events[0].body["clickId"],
            "email": "form@example.com",
            "customerName": "Form User",
        },
        {"clickId": events[0].body["clickId"], "email": "json@example.com", "customerId": "77"},
    ]


def test_affy_down_leaves_the_shop_untouched(sandbox: SandboxServer) -> None:
    sandbox.set_faults(outage_seconds=60)  # every API call answers 503
    app = create_app(sandbox.settings(flush_timeout=0.2))
    client = app.test_client()
    assert client.get("/?ref=down_aff", headers=UA).status_code == 200
    ok = client.post(
        "/signup", data={"plan": "starter", "email": "d@example.com", "name": "D"}, headers=UA
    )
    assert ok.status_code == 302 and ok.location == "/checkout"
    paid = client.post("/checkout", data={"card": "4242424242424242"}, headers=UA)
    assert paid.status_code == 302 and paid.location == "/thanks"
    assert sandbox.events() == []
    # Delivery keeps retrying in the background; a bounded flush gives up, nothing raises.
    backend = delivery.backend_for(app.extensions["affy"].settings)
    assert backend.flush(0.5) is False
    backend.close(0.2)  # don't leave retries for the exit-time flush


def test_the_on_error_hook_comes_from_app_config() -> None:
    def hook(event: Event, reason: str) -> None:
        pass

    app = make_app(AFFY_CLIENT_ID=8, AFFY_API_URL="http://127.0.0.1:9", AFFY_ON_ERROR=hook)
    affy = Affy(app)
    assert affy.settings is not None and affy.settings.on_error is hook
