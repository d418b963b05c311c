"""Django's middleware decides what ``Attribution.decide`` decides, sync (under WSGI) and
async (under ASGI), for the generated requests of the WSGI and ASGI fast-path tests; and
the named cases, driven through all four adapters (WSGI, ASGI, Django sync and async),
come out the same: one fast path (``middleware/pipeline.py``) behind each of them."""

from __future__ import annotations

import asyncio
import io
from typing import Any
from unittest import mock

import pytest

pytest.importorskip("django")

import djproject  # noqa: E402

djproject.setup_in_process()

from _fast_path import (  # noqa: E402
    CHROME,
    SESSION_ID,
    SETTINGS,
    Outcome,
    _events,
    asgi_scope,
    assert_same,
    fixed_ids_and_clock,
    full_decision,
    purposes,
    queries,
    request_methods,
    schemes,
    settings_and_cookies,
    through_asgi,
    through_wsgi,
    user_agents,
    wsgi_environ,
)
from _strategies import EXAMPLES, VALID_ID  # noqa: E402
from django.core.handlers.asgi import ASGIRequest as DjangoASGIRequest  # noqa: E402
from django.core.handlers.wsgi import WSGIRequest as DjangoWSGIRequest  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from hypothesis import assume, given  # noqa: E402

from affy_middleware import Settings, current_visit, delivery  # noqa: E402
from affy_middleware.attribution import ASGIRequest, Visit, WSGIRequest  # noqa: E402
from affy_middleware.attribution.cookies import companion_value  # noqa: E402
from affy_middleware.django import AffyMiddleware  # noqa: E402
from affy_middleware.django.request import DjangoRequest  # noqa: E402


def normal(header: str) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """A ``Set-Cookie`` value without the order of its attributes or their case (Django's
    morsels write them in their own order): its attributes sorted (a set's own order, and
    so its ``str``, depends on how it was built)."""
    pair, *attributes = header.split("; ")
    name, _, value = pair.partition("=")
    parts = (attribute.partition("=") for attribute in attributes)
    return name, value, tuple(sorted((key.lower(), text) for key, _, text in parts))


def normalised(outcome: Outcome) -> Outcome:
    visit, cookies, events = outcome
    return visit, tuple(map(str, map(normal, cookies))), events


def reference(settings: Settings, request: HttpRequest) -> Outcome:
    """``decide`` over the whole request; under ASGI its cookie headers joined with "; "
    (Django's own ``META`` joins several with ",", which would hide all but the first)."""
    meta = request.META
    cookie = meta.get("HTTP_COOKIE")
    scope = getattr(request, "scope", None)
    if scope is not None:
        values = [value.decode("latin-1") for name, value in scope["headers"] if name == b"cookie"]
        cookie = "; ".join(values) if values else None
    view = DjangoRequest(request, meta.get("QUERY_STRING") or "", cookie)
    return full_decision(settings, view)


def django_middleware(settings: Settings, get_response: Any) -> AffyMiddleware:
    with mock.patch("affy_middleware.django.conf.configured", lambda: settings):
        return AffyMiddleware(get_response)


def through_django(settings: Settings, request: HttpRequest, *, run_async: bool) -> Outcome:
    seen: list[Visit | None] = []

    def view(req: Any) -> HttpResponse:
        seen.append(current_visit())
        assert req.affy_visit is seen[0]
        return HttpResponse(b"ok")

    async def async_view(req: Any) -> HttpResponse:
        return view(req)

    with fixed_ids_and_clock(), delivery.capture() as events:
        if run_async:
            response = asyncio.run(django_middleware(settings, async_view)(request))
        else:
            response = django_middleware(settings, view)(request)
    cookies = tuple(morsel.OutputString() for morsel in response.cookies.values())
    return seen[0], cookies, _events(events)


def django_wsgi_request(environ: dict[str, Any]) -> HttpRequest:
    environ = {**environ, "wsgi.input": io.BytesIO(b"")}
    environ["REQUEST_METHOD"] = environ.get("REQUEST_METHOD") or "GET"  # Django needs one
    return DjangoWSGIRequest(environ)


def django_asgi_request(scope: dict[str, Any]) -> HttpRequest:
    try:
        return DjangoASGIRequest(dict(scope), io.BytesIO(b""))
    except UnicodeDecodeError:  # Django decodes the query as UTF-8 and fails itself
        assume(False)
        raise


def assert_same_in_django(settings: Settings, make: Any, *, run_async: bool) -> Outcome:
    through = through_django(settings, make(), run_async=run_async)
    assert_same(normalised(through), normalised(reference(settings, make())))
    return through


@EXAMPLES
@given(
    case=settings_and_cookies(),
    method=request_methods,
    query=queries,
    ua=user_agents,
    purpose=purposes,
    scheme=schemes,
)
def test_django_middleware_decides_as_decide_does(
    case: tuple[Settings, list[str]],
    method: str | None,
    query: str,
    ua: str | None,
    purpose: str | None,
    scheme: str,
) -> None:
    settings, cookies = case
    environ = wsgi_environ(method, query, cookies, ua, purpose, scheme)
    assert_same_in_django(settings, lambda: django_wsgi_request(environ), run_async=False)
    scope = asgi_scope(method, query, cookies, ua, purpose, scheme)
    assert_same_in_django(settings, lambda: django_asgi_request(scope), run_async=True)


# -- the cases the generated ones must include, through every adapter ------------------------

RETURNING = f"theme=dark; affy_click_id={VALID_ID}; affy_session_id={SESSION_ID}; " + (
    f"affy_click_id_at={companion_value(VALID_ID, 1_700_000_000, 'aff')}"
)


@pytest.mark.parametrize(
    ("name", "method", "query", "cookies", "kind"),
    [
        pytest.param("active", "GET", "", [RETURNING], "returning", id="returning-visitor"),
        pytest.param("active", "POST", "", [RETURNING], "returning", id="returning-signup"),
        pytest.param("active", "GET", "ref=aff", [RETURNING], "landing", id="landing-over-a-visit"),
        pytest.param("active", "GET", "ref=aff", [], "landing", id="first-landing"),
        pytest.param(
            "active", "GET", "", [f"affy_click_id={VALID_ID}"], "reissue", id="snippet-cookie"
        ),
        pytest.param(
            "other names", "GET", "", ["x=1", f"sid={SESSION_ID}"], "returning", id="sid-only"
        ),
        pytest.param(
            "inactive", "GET", "ref=aff", [f"affy_click_id={VALID_ID}"], "returning", id="off"
        ),
        pytest.param("active", "GET", "", ["theme=dark"], None, id="nothing-of-ours"),
        pytest.param("active", "GET", "q=1", [], None, id="no-cookie-no-ref"),
        pytest.param(
            "active", "GET", "", [f"affy_session_id={SESSION_ID}"], "returning", id="session"
        ),
    ],
)
def test_named_cases_through_every_adapter(
    name: str, method: str, query: str, cookies: list[str], kind: str | None
) -> None:
    settings = SETTINGS[name]
    environ = wsgi_environ(method, query, cookies, CHROME, None, "https")
    environ["HTTP_HOST"] = "shop.test"  # as the ASGI scope's host header: the same click URL
    scope = asgi_scope(method, query, cookies, CHROME, None, "https")
    wsgi = through_wsgi(settings, dict(environ))  # a copy: the middleware writes to it
    assert_same(wsgi, full_decision(settings, WSGIRequest(dict(environ))))
    asgi = through_asgi(settings, dict(scope))
    assert_same(asgi, full_decision(settings, ASGIRequest(dict(scope))))
    sync = assert_same_in_django(settings, lambda: django_wsgi_request(environ), run_async=False)
    run_async = assert_same_in_django(settings, lambda: django_asgi_request(scope), run_async=True)
    # The four adapters agree with one another, not only each with decide().
    for outcome in (asgi, sync, run_async):
        assert_same(normalised(outcome), normalised(wsgi))
    visit, set_cookies, events = wsgi
    if kind is None:
        assert visit is None
        return
    assert visit is not None
    assert visit.landed == (kind == "landing") and visit.reissued == (kind == "reissue")
    assert bool(set_cookies) == (kind in ("landing", "reissue"))
    assert len(events) == (kind == "landing")
