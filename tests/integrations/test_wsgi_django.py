"""AffyMiddleware around Django's own WSGI application (get_wsgi_application())."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("django")

import django  # noqa: E402
from django.conf import settings as django_settings  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.urls import path  # noqa: E402
from werkzeug.test import Client  # noqa: E402

from affy_middleware import (  # noqa: E402
    AffyMiddleware,
    Settings,
    current_visit,
    delivery,  # noqa: E402
    track_registration,
)
from affy_middleware._wire import Event  # noqa: E402

UA = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"}


def home(request: HttpRequest) -> HttpResponse:
    visit = current_visit()
    response = HttpResponse(f"home {visit.affiliate_reference if visit else '-'}")
    response.set_cookie("csrftoken", "django-own")
    return response


@track_registration
def signup(request: HttpRequest) -> HttpResponse:
    if request.POST.get("email", "").endswith("@taken.example"):
        return HttpResponse("taken", status=409)
    return HttpResponse("created", status=201)


urlpatterns = [path("", home), path("signup", signup)]


@pytest.fixture
def client() -> Iterator[Client]:
    # Configured at test time, and only if no other test module configured Django first
    # (settings are process-wide); everything this file needs is overridden below.
    if not django_settings.configured:
        django_settings.configure(DEBUG=False, ALLOWED_HOSTS=["*"], USE_TZ=True)
    django.setup()
    with override_settings(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"], MIDDLEWARE=[]):
        app = AffyMiddleware(get_wsgi_application(), settings=Settings(client_id=2))
        yield Client(app)


@pytest.fixture
def events() -> Iterator[list[Event]]:
    with delivery.capture() as captured:
        yield captured


def test_django_landing_and_signup(client: Client, events: list[Event]) -> None:
    landing = client.get("/?aff=dj_partner", headers=UA)
    assert landing.status_code == 200 and landing.text == "home dj_partner"
    cookies = landing.headers.getlist("Set-Cookie")
    assert any(c.strip().startswith("csrftoken=django-own") for c in cookies)  # kept
    assert sum(c.startswith("affy_") for c in cookies) == 3
    taken = client.post("/signup", data={"email": "x@taken.example"}, headers=UA)
    assert taken.status_code == 409
    created = client.post(
        "/signup", data={"email": "dj@example.com", "name": "Dj Ango"}, headers=UA
    )
    assert created.status_code == 201 and created.text == "created"
    click, registration = events
    assert click.body["affiliateReference"] == "dj_partner"
    assert registration.body == {
        "clickId": click.body["clickId"],
        "email": "dj@example.com",
        "customerName": "Dj Ango",
    }


def test_django_response_untouched_for_plain_visitors(client: Client, events: list[Any]) -> None:
    response = client.get("/", headers=UA)
    assert response.text == "home -"
    assert [c.split("=", 1)[0].strip() for c in response.headers.getlist("Set-Cookie")] == [
        "csrftoken"
    ]
    assert events == []
