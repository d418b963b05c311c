"""``AffyMiddleware`` in ``settings.MIDDLEWARE``, under Django's test ``Client``: cookies next
to the app's own, ``request.affy_visit`` and ``current_visit()``, ``Secure`` from
``request.is_secure()``, the async path, and no double tracking behind ``wrap_wsgi``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("django")

import djproject  # noqa: E402

djproject.setup_in_process()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.test import AsyncClient, Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from djproject.views import create_table  # noqa: E402
from werkzeug.test import Client as WerkzeugClient  # noqa: E402

from affy_middleware import AffyConfigError, delivery  # noqa: E402
from affy_middleware._wire import Event  # noqa: E402
from affy_middleware.django import AffyMiddleware, wrap_wsgi  # noqa: E402
from affy_middleware.testing import CapturedEvents  # noqa: E402

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
PROJECT = {
    "ROOT_URLCONF": "djproject.urls",
    "MIDDLEWARE": djproject.settings.MIDDLEWARE,
    "AFFY_CLIENT_ID": 7,
}


@pytest.fixture
def events() -> Iterator[list[Event]]:
    with override_settings(**PROJECT), delivery.capture() as captured:
        yield captured


def affy_cookies(response: Any) -> dict[str, Any]:
    return {name: morsel for name, morsel in response.cookies.items() if name.startswith("affy_")}


def test_landing_sets_cookies_next_to_the_apps_and_reports_the_click(events: list[Event]) -> None:
    client = Client(headers={"user-agent": CHROME})
    landing = client.get("/?ref=dj_mw&utm_source=blog")
    assert landing.content == b"ref=dj_mw"
    assert landing.cookies["app_own"].value == "kept"  # the app's own cookie stays
    cookies = affy_cookies(landing)
    assert sorted(cookies) == ["affy_click_id", "affy_click_id_at", "affy_session_id"]
    click_cookie = cookies["affy_click_id"]
    assert (click_cookie["path"], click_cookie["samesite"], click_cookie["secure"]) == (
        "/",
        "Lax",
        "",
    )
    assert int(click_cookie["max-age"]) == 30 * 86400
    assert cookies["affy_click_id_at"]["httponly"] is True
    (click,) = events
    assert click.body["affiliateReference"] == "dj_mw" and click.body["source"] == "blog"
    assert click.body["clickId"] == click_cookie.value
    assert click.body["clickedUrl"] == "http://testserver/?ref=dj_mw&utm_source=blog"
    # The test client sends the cookies back: the visit is known on the next request.
    seen = client.get("/visit.json").json()
    assert seen == {"ref": "dj_mw", "same": True, "secure": False}


def test_secure_follows_secure_proxy_ssl_header(events: list[Event]) -> None:
    client = Client(headers={"user-agent": CHROME, "x-forwarded-proto": "https"})
    with override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")):
        landing = client.get("/?ref=dj_tls")
    assert all(morsel["secure"] is True for morsel in affy_cookies(landing).values())
    assert events[0].body["clickedUrl"].startswith("https://testserver")
    plain = Client(headers={"user-agent": CHROME}).get("/?ref=dj_plain")
    assert not any(morsel["secure"] for morsel in affy_cookies(plain).values())


def test_async_views_under_the_async_client(events: list[Event]) -> None:
    async def go() -> tuple[Any, Any]:
        client = AsyncClient()  # keeps the cookies between requests
        landing = await client.get("/?ref=dj_async", headers={"user-agent": CHROME})
        return landing, await client.post("/pay", headers={"user-agent": CHROME})

    landing, paid = asyncio.run(go())
    assert landing.content == b"ref=dj_async" and paid.content == b"paid"
    click, payment = events
    assert payment.kind == "payment" and str(payment.body["leadValue"]) == "19.90"
    assert payment.body["sessionId"] == click.body["sessionId"]


def test_async_capable_without_a_thread_hop() -> None:
    async def get_response(request: Any) -> Any:
        return None

    with override_settings(**PROJECT):
        middleware = AffyMiddleware(get_response)
        sync = AffyMiddleware(lambda request: None)
    assert AffyMiddleware.sync_capable and AffyMiddleware.async_capable
    assert middleware.async_mode and asyncio.iscoroutinefunction(middleware)
    assert not sync.async_mode and not asyncio.iscoroutinefunction(sync)


def test_wrapped_and_listed_tracks_once(events: list[Event]) -> None:
    client = WerkzeugClient(wrap_wsgi(get_wsgi_application()))
    landing = client.get("/?ref=dj_twice", headers={"User-Agent": CHROME})
    assert landing.text == "ref=dj_twice"
    assert sum(c.startswith("affy_") for c in landing.headers.getlist("Set-Cookie")) == 3
    assert [e.kind for e in events] == ["click"]


def test_plain_requests_are_untouched(events: list[Event]) -> None:
    response = Client(headers={"user-agent": CHROME}).get("/")
    assert response.content == b"ref=-" and list(response.cookies) == ["app_own"]
    assert events == []


def test_malformed_setting_fails_when_the_middleware_loads() -> None:
    with override_settings(**{**PROJECT, "AFFY_CLIENT_ID": "abc"}), pytest.raises(AffyConfigError):
        Client().get("/")


def test_affy_events_fixture_with_the_test_client(affy_events: CapturedEvents) -> None:
    """The recipe of docs/django.md: the fixture and Django's test Client."""
    create_table()
    with override_settings(**PROJECT):
        client = Client(headers={"user-agent": CHROME})
        client.get("/?ref=dj_fixture")
        client.post("/signup", {"email": "fixture@example.com"})
    assert affy_events.kinds == ["click", "registration"]
    assert affy_events.one("registration").body["email"] == "fixture@example.com"


def test_a_subclass_with_a_consent_hook(events: list[Event]) -> None:
    consenting = [
        "django.middleware.security.SecurityMiddleware",
        "djproject.middleware.Consenting",
    ]
    with override_settings(MIDDLEWARE=consenting):
        client = Client(headers={"user-agent": CHROME})
        held = client.get("/?ref=dj_consent")
        assert held.content == b"ref=dj_consent" and affy_cookies(held) == {}
        assert events == []
        client.cookies["consent"] = "yes"
        agreed = client.get("/?ref=dj_consent")
    assert len(affy_cookies(agreed)) == 3 and [e.kind for e in events] == ["click"]


VALID = "AbCdEfGhIjKlMnOpQrStUvWx"
OTHER = "GTCMlBDdgLiQ41t7UsWfHAoZ"


def _wsgi_visit_fields(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    import json

    from affy_middleware import current_visit

    seen = current_visit()
    fields = ("click_id", "session_id", "affiliate_reference", "landed", "reissued", "method")
    body = json.dumps({n: getattr(seen, n) for n in fields} if seen else {}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


@pytest.mark.parametrize(
    ("method", "query", "cookie"),
    [
        ("GET", "", f"affy_click_id={VALID}; affy_session_id={OTHER}"),  # no companion
        ("POST", "", f"affy_click_id={VALID}; affy_session_id={OTHER}"),
        ("GET", "", f"affy_session_id={OTHER}"),
        ("GET", "", "affy_click_id=bad!value; affy_session_id=x"),
        ("GET", "page=2", f"theme=dark; affy_session_id={OTHER}"),
        ("GET", "ref=dj_same", f"affy_click_id={VALID}"),  # a landing over a click cookie
        ("GET", "", "affy_click_id_x=1; other=affy_session_id"),  # needles, not ours
        ("HEAD", "", f"affy_click_id={VALID}"),
    ],
)
def test_the_django_middleware_decides_as_the_wsgi_one(
    events: list[Event], method: str, query: str, cookie: str
) -> None:
    # The WSGI middleware decides as Attribution.decide() (tests/middleware/
    # test_fast_path.py); the Django class takes the same shortcuts on Django's request.
    from affy_middleware import AffyMiddleware as WSGIMiddleware
    from affy_middleware.django.conf import configured

    headers = {"Cookie": cookie, "User-Agent": CHROME}
    path = "/visit-fields.json" + (f"?{query}" if query else "")
    django_app = WerkzeugClient(get_wsgi_application())
    through_django = django_app.open(path, method=method, headers=headers)
    django_events = [(e.kind, e.order_key is not None) for e in events]
    events.clear()
    wsgi_app = WerkzeugClient(WSGIMiddleware(_wsgi_visit_fields, settings=configured()))
    through_wsgi = wsgi_app.open(path, method=method, headers=headers)
    wsgi_events = [(e.kind, e.order_key is not None) for e in events]

    def seen(response: Any) -> dict[str, Any]:
        if method == "HEAD":
            return {}
        fields: dict[str, Any] = response.get_json()
        if fields.get("landed"):  # new random ids on each landing
            fields["click_id"] = fields["session_id"] = "new"
        return fields

    def set_names(response: Any) -> list[str]:
        # (Django writes its Set-Cookie values with a leading space)
        names = (c.strip().split("=", 1)[0] for c in response.headers.getlist("Set-Cookie"))
        return sorted(name for name in names if name.startswith("affy_"))

    assert seen(through_django) == seen(through_wsgi)
    assert set_names(through_django) == set_names(through_wsgi)
    assert django_events == wsgi_events
