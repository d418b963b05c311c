"""Django behind both middlewares: settings from Django settings or env, the example shop's
journey in-process under WSGI and ASGI (sync and async views, CSRF, sessions), lifespan."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

pytest.importorskip("django")

import django  # noqa: E402
import httpx  # noqa: E402
from django.conf import settings as django_settings  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.urls import path  # noqa: E402
from django.utils.decorators import method_decorator  # noqa: E402
from django.views import View  # noqa: E402
from werkzeug.test import Client  # noqa: E402

import examples.django_shop.settings as shop_settings  # noqa: E402
from affy_middleware import (  # noqa: E402
    AffyASGIMiddleware,
    AffyConfigError,
    AffyMiddleware,
    Settings,
    current_visit,
    delivery,
    identify,
    track_registration,
)
from affy_middleware._wire import Event  # noqa: E402
from affy_middleware.django import affy_settings, wrap_asgi, wrap_wsgi  # noqa: E402
from affy_middleware.sandbox import SandboxServer  # noqa: E402

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
UA = {"User-Agent": CHROME}
OFFLINE = Settings(client_id=1, api_url="http://127.0.0.1:9")
#: The example project's settings; the process-wide ones (apps, databases) are left alone.
SHOP = {
    name: getattr(shop_settings, name)
    for name in dir(shop_settings)
    if name.isupper() and name not in ("INSTALLED_APPS", "DATABASES", "SECRET_KEY")
}
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture
def shop() -> Iterator[None]:
    """The example project's settings (Django is configured once per process, maybe by
    another test module first: everything the shop needs is overridden here)."""
    if not django_settings.configured:
        django_settings.configure(SECRET_KEY=shop_settings.SECRET_KEY, **SHOP)
    try:
        django_settings.SECRET_KEY  # noqa: B018
    except ImproperlyConfigured:
        # Configured without one by another module; overriding it would break on exit.
        django_settings.SECRET_KEY = shop_settings.SECRET_KEY
    django.setup()
    with override_settings(**SHOP):
        yield


@pytest.fixture
def events() -> Iterator[list[Event]]:
    with delivery.capture() as captured:
        yield captured


# -- settings -------------------------------------------------------------------------------


def test_settings_from_django_then_env_then_keywords(
    shop: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AFFY_CLIENT_ID", "21")
    monkeypatch.setenv("AFFY_ATTRIBUTION_DAYS", "7")
    monkeypatch.delenv("AFFY_REF_PARAMS", raising=False)
    with override_settings(AFFY_CLIENT_ID=33, AFFY_COOKIE_DOMAIN="shop.test"):
        settings = affy_settings()
        assert (settings.client_id, settings.cookie_domain) == (33, "shop.test")
        assert settings.attribution_days == 7  # from the environment
        assert settings.ref_params == ("affy_ref", "ref", "aff", "via")  # settings.py
        assert affy_settings(client_id=44).client_id == 44
        assert wrap_wsgi(get_wsgi_application()).settings.client_id == 33
        assert wrap_asgi(get_asgi_application(), attribution_days=3).settings.attribution_days == 3
    assert affy_settings().client_id == 21


def test_the_on_error_hook_comes_from_django_settings(shop: None) -> None:
    def hook(event: object, reason: str) -> None:
        pass

    with override_settings(AFFY_CLIENT_ID=33, AFFY_ON_ERROR=hook):
        assert affy_settings().on_error is hook


@pytest.mark.parametrize(
    "bad",
    [
        {"AFFY_CLIENT_ID": "abc"},
        {"AFFY_API_URL": "http://affy.example.com"},
        {"AFFY_QUEUE_SIZE": 0},
    ],
)
def test_malformed_settings_fail_at_start_up(shop: None, bad: dict[str, Any]) -> None:
    with override_settings(**bad), pytest.raises(AffyConfigError):
        wrap_wsgi(get_wsgi_application())
    with override_settings(**bad), pytest.raises(AffyConfigError):
        wrap_asgi(get_asgi_application())


def test_wrappers_take_explicit_settings_and_consent(shop: None) -> None:
    def consent(native: Any) -> bool:
        return False

    wsgi = wrap_wsgi(get_wsgi_application(), settings=OFFLINE, cookie_domain="a.test")
    asgi = wrap_asgi(get_asgi_application(), settings=OFFLINE, consent=consent)
    assert isinstance(wsgi, AffyMiddleware) and isinstance(asgi, AffyASGIMiddleware)
    assert wsgi.settings.cookie_domain == "a.test" and asgi.settings is OFFLINE


# -- the shop under WSGI ---------------------------------------------------------------------


def wsgi_journey(client: Client) -> dict[str, Any]:
    out: dict[str, Any] = {"landing": client.get("/?ref=aff_demo&utm_source=blog", headers=UA)}
    out["pricing"] = client.get("/pricing", headers=UA)
    form = client.get("/signup?plan=team", headers=UA)
    token = CSRF.search(form.text)
    assert token is not None, form.text
    data = {"csrfmiddlewaretoken": token.group(1), "plan": "team"}
    out["no_csrf"] = client.post("/signup", data={"plan": "team"}, headers=UA)
    out["bad"] = client.post("/signup", data={**data, "email": "nope"}, headers=UA)
    out["ok"] = client.post(
        "/signup", data={**data, "email": "Ann@Example.com", "name": "Ann"}, headers=UA
    )
    checkout = client.get("/checkout", headers=UA)
    token = CSRF.search(checkout.text)
    assert token is not None, checkout.text
    pay = {"csrfmiddlewaretoken": token.group(1)}
    out["declined"] = client.post("/checkout", data={**pay, "card": "12"}, headers=UA)
    out["paid"] = client.post("/checkout", data={**pay, "card": "4242 4242 4242 4242"}, headers=UA)
    out["thanks"] = client.get("/thanks", headers=UA)
    return out


def check_events(events: list[Any], ref: str = "aff_demo") -> None:
    click, registration, payment = events
    assert click.body["affiliateReference"] == ref
    assert registration.body == {
        "clickId": click.body["clickId"],
        "email": "ann@example.com",
        "customerId": registration.body["customerId"],
        "customerName": "Ann",
    }
    assert registration.body["customerId"].isdigit()
    assert payment.body["sessionId"] == click.body["sessionId"]
    assert payment.body["leadValue"] == Decimal("99.00")
    assert payment.body["customerEmail"] == "ann@example.com"


def test_shop_under_wsgi(shop: None, events: list[Event]) -> None:
    client = Client(wrap_wsgi(get_wsgi_application(), settings=OFFLINE))
    r = wsgi_journey(client)
    assert r["landing"].status_code == 200
    assert sum(c.startswith("affy_") for c in r["landing"].headers.getlist("Set-Cookie")) == 3
    assert "Referred by aff_demo" in r["pricing"].text
    assert r["no_csrf"].status_code == 403  # Django's CSRF check still works
    assert r["bad"].status_code == 400
    assert r["ok"].status_code == 302 and r["ok"].location == "/checkout"
    assert any(c.strip().startswith("sessionid=") for c in r["ok"].headers.getlist("Set-Cookie"))
    assert r["declined"].status_code == 402  # an async view, run by Django under WSGI
    assert r["paid"].status_code == 302 and r["paid"].location == "/thanks"
    assert "Thank you, Ann!" in r["thanks"].text
    check_events(events)


# -- the shop under ASGI ---------------------------------------------------------------------


async def asgi_journey(app: Any) -> dict[str, httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    out: dict[str, httpx.Response] = {}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://localhost", headers=UA
    ) as client:
        out["landing"] = await client.get("/?via=aff_asgi")
        out["pricing"] = await client.get("/pricing")
        form = await client.get("/signup?plan=team")
        token = CSRF.search(form.text)
        assert token is not None, form.text
        data = {"csrfmiddlewaretoken": token.group(1), "plan": "team"}
        out["bad"] = await client.post("/signup", data={**data, "email": "nope"})
        out["ok"] = await client.post(
            "/signup", data={**data, "email": "ann@example.com", "name": "Ann"}
        )
        checkout = await client.get("/checkout")
        token = CSRF.search(checkout.text)
        assert token is not None, checkout.text
        pay = {"csrfmiddlewaretoken": token.group(1)}
        out["declined"] = await client.post("/checkout", data={**pay, "card": "1"})
        out["paid"] = await client.post("/checkout", data={**pay, "card": "4242424242424242"})
        out["thanks"] = await client.get("/thanks")
        out["attribution"] = await client.get("/attribution.json")
    return out


def test_shop_under_asgi(shop: None, events: list[Event]) -> None:
    r = asyncio.run(asgi_journey(wrap_asgi(get_asgi_application(), settings=OFFLINE)))
    assert r["landing"].status_code == 200
    assert sum(c.startswith("affy_") for c in r["landing"].headers.get_list("set-cookie")) == 3
    assert "Referred by aff_asgi" in r["pricing"].text
    assert (r["bad"].status_code, r["ok"].status_code) == (400, 302)
    assert (r["declined"].status_code, r["paid"].status_code) == (402, 302)
    assert "Thank you, Ann!" in r["thanks"].text
    assert r["attribution"].json()["affiliate_reference"] == "aff_asgi"
    check_events(events, "aff_asgi")


def test_shop_under_asgi_against_the_sandbox_with_lifespan_flush(
    shop: None, sandbox: SandboxServer
) -> None:
    from tests.middleware.test_asgi import drive_lifespan

    sandbox.set_faults(latency=0.2)  # delivered only because the shutdown waits for it
    app = wrap_asgi(get_asgi_application(), settings=sandbox.settings(flush_timeout=4))

    async def journey() -> None:
        r = await asgi_journey(app)
        assert r["paid"].status_code == 302

    # Django's ASGIHandler refuses lifespan: the middleware answers for it.
    sent = asyncio.run(drive_lifespan(app, journey))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    kinds = [(e["kind"], e["affiliate_reference"]) for e in sandbox.events()]
    assert kinds == [("click", "aff_asgi"), ("registration", "aff_asgi"), ("payment", "aff_asgi")]


# -- views of every kind ---------------------------------------------------------------------


@track_registration
def sync_signup(request: HttpRequest) -> HttpResponse:
    return HttpResponse("created", status=201)


@track_registration
async def async_signup(request: HttpRequest) -> HttpResponse:
    identify(email="async@example.com", name="Async")
    return HttpResponse("created", status=201)


@method_decorator(track_registration, name="post")
class SignupView(View):
    def post(self, request: HttpRequest) -> HttpResponse:
        visit = current_visit()
        return HttpResponse(f"class {visit.affiliate_reference if visit else '-'}")


def land(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [
    path("", land),
    path("sync", sync_signup),
    path("async", async_signup),
    path("class", SignupView.as_view()),
]

VIEW_SETTINGS = {"ROOT_URLCONF": __name__, "MIDDLEWARE": [], "ALLOWED_HOSTS": ["*"]}


def expected_bodies(click: Event) -> list[dict[str, str]]:
    cid = click.body["clickId"]
    return [
        {"clickId": cid, "email": "sync@example.com", "customerName": "Sync"},
        {"clickId": cid, "email": "async@example.com", "customerName": "Async"},
        {"clickId": cid, "email": "class@example.com"},
    ]


def test_sync_async_and_class_views_under_wsgi(shop: None, events: list[Event]) -> None:
    with override_settings(**VIEW_SETTINGS):
        client = Client(wrap_wsgi(get_wsgi_application(), settings=OFFLINE))
        client.get("/?ref=views", headers=UA)
        assert (
            client.post("/sync", data={"email": "sync@example.com", "name": "Sync"}).status_code
            == 201
        )
        assert client.post("/async", headers=UA).status_code == 201
        assert client.post("/class", data={"email": "class@example.com"}).text == "class views"
    click, *registrations = events
    assert [e.body for e in registrations] == expected_bodies(click)


def test_sync_async_and_class_views_under_asgi(shop: None, events: list[Event]) -> None:
    async def go() -> None:
        app = wrap_asgi(get_asgi_application(), settings=OFFLINE)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://localhost", headers=UA
        ) as client:
            await client.get("/?ref=views")
            sync = await client.post("/sync", data={"email": "sync@example.com", "name": "Sync"})
            assert sync.status_code == 201
            assert (await client.post("/async")).status_code == 201
            klass = await client.post("/class", data={"email": "class@example.com"})
            assert klass.text == "class views"

    with override_settings(**VIEW_SETTINGS):
        asyncio.run(go())
    click, *registrations = events
    assert [e.body for e in registrations] == expected_bodies(click)
