"""What the fast-path tests share (``tests/middleware/test_fast_path.py``,
``tests/integrations/test_django_fast_path.py``): generated requests, each adapter driven
over one request, and the reference decision (``Attribution.decide`` over a view that
reads the whole request itself), with ids and the clock fixed so that landings compare."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import types
from collections.abc import Iterator
from typing import Any
from unittest import mock

from _strategies import VALID_ID, messy
from hypothesis import strategies as st

from affy_middleware import AffyASGIMiddleware, AffyMiddleware, Settings, current_visit, delivery
from affy_middleware._wire import Event
from affy_middleware.attribution import Attribution, Visit
from affy_middleware.attribution.cookies import companion_value

NOW = 1_800_000_000.0
OTHER_ID = "GTCMlBDdgLiQ41t7UsWfHAoZ"
SESSION_ID = "ctIUs8hi5BgP1lIQOwj8P1sf"
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"

#: Tracking on; off (no client id: cookies read, nothing written); a consent cookie;
#: cookie names without a common prefix (the ASGI middleware's two-needle pre-check).
SETTINGS = {
    "active": Settings(client_id=1, api_url="http://127.0.0.1:9"),
    "inactive": Settings(client_id=None),
    "consent cookie": Settings(client_id=1, api_url="http://127.0.0.1:9", consent_cookie="ok"),
    "other names": Settings(
        client_id=1, api_url="http://127.0.0.1:9", click_cookie="clk", session_cookie="sid"
    ),
}


def _pieces(click: str, session: str) -> list[str]:
    companion = click + "_at"
    return [
        f"{click}={VALID_ID}",
        f"{click}={OTHER_ID}",
        f"{click}= {VALID_ID} ",
        f"{click}=bad!value",
        f"{click}=",
        f"{click}={'x' * 129}",
        f"x{click}={VALID_ID}",
        f"{session}={SESSION_ID}",
        f"{session}=no",
        f"{companion}={companion_value(VALID_ID, 1_700_000_000, 'aff')}",
        f"{companion}={companion_value(VALID_ID, 1_700_000_000, None)}",
        f"{companion}={companion_value(VALID_ID, 1_700_000_000, 'a b/ü')}",
        f"{companion}={companion_value(OTHER_ID, 1_700_000_000, 'aff')}",
        f"{companion}=1700000000.00000000",
        f"{companion}=garbage",
    ]


OTHERS = ["session=eyJhbGciOiJIUzI1NiJ9.sig", "theme=dark", "ok=yes", "ok=no"]


def cookie_headers(settings: Settings) -> st.SearchStrategy[list[str]]:
    """The Cookie header(s): none, or pairs joined by a separator, in one header or several.
    Pairs: ours under these settings' names (valid or not), under the other names, others'
    cookies and random text."""
    own = _pieces(settings.click_cookie, settings.session_cookie)
    piece = st.one_of(
        st.sampled_from(own),
        st.sampled_from(own + _pieces("affy_click_id", "affy_session_id") + OTHERS),
        messy,
    )
    header = st.lists(piece, min_size=1, max_size=5).flatmap(
        lambda parts: st.sampled_from(["; ", ";", " ; "]).map(lambda sep: sep.join(parts))
    )
    return st.lists(header, max_size=3)


queries = st.one_of(
    st.sampled_from(
        [
            "",
            "ref=aff_demo",
            "ref=aff_demo&utm_source=news",
            "affy_ref=a%20b",
            "via=",
            "ref",
            "q=1&page=2",
            "%",
            "ref=%FF",
            "aff=x" * 30,
        ]
    ),
    messy,
)
#: None: no REQUEST_METHOD in the environ (WSGI defaults to GET); "" likewise.
request_methods = st.sampled_from([None, "", "GET", "GET", "POST", "HEAD", "PUT"])
user_agents = st.sampled_from([None, CHROME, "Slackbot-LinkExpanding 1.0", ""])
purposes = st.sampled_from([None, "prefetch", "prefetch;prerender"])
schemes = st.sampled_from(["http", "https"])


@st.composite
def settings_and_cookies(draw: st.DrawFn) -> tuple[Settings, list[str]]:
    settings = SETTINGS[draw(st.sampled_from(sorted(SETTINGS)))]
    return settings, draw(cookie_headers(settings))


Outcome = tuple[Visit | None, tuple[str, ...], list[tuple[Any, ...]]]


@contextlib.contextmanager
def fixed_ids_and_clock() -> Iterator[None]:
    """The same ids in the same order, and one clock, on each side of a comparison."""
    ids = (f"id{n:022d}" for n in itertools.count())
    clock = types.SimpleNamespace(time=lambda: NOW)
    with (
        mock.patch(
            "affy_middleware.attribution.decide.new_id_pair", lambda: (next(ids), next(ids))
        ),
        mock.patch("affy_middleware.attribution.decide.time", clock),
    ):
        yield


def _events(events: list[Event]) -> list[tuple[Any, ...]]:
    return [(e.kind, e.body, e.order_key, e.expects_click) for e in events]


def full_decision(settings: Settings, request: Any) -> Outcome:
    """``decide`` over a view that reads the whole request itself."""
    with fixed_ids_and_clock():
        decision = Attribution(settings).decide(request)
    if decision is None:
        return None, (), []
    visit, cookies, event = decision
    return visit, cookies, _events([] if event is None else [event])


def assert_same(through: Outcome, full: Outcome) -> None:
    (visit, cookies, events), (want_visit, want_cookies, want_events) = through, full
    assert (visit is None) == (want_visit is None)
    if visit is not None:
        assert type(visit) is type(want_visit)
        assert visit == want_visit
        assert repr(visit) == repr(want_visit)
    assert cookies == want_cookies, (cookies, want_cookies)
    assert events == want_events, (events, want_events)


# -- WSGI -----------------------------------------------------------------------------------


def wsgi_environ(
    method: str | None,
    query: str,
    cookies: list[str],
    ua: str | None,
    purpose: str | None,
    scheme: str,
) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "wsgi.url_scheme": scheme,
        "SERVER_NAME": "shop.test",
        "SERVER_PORT": "443",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/p",
        "QUERY_STRING": query,
    }
    if method is not None:
        environ["REQUEST_METHOD"] = method
    if cookies:
        environ["HTTP_COOKIE"] = "; ".join(cookies)  # one header in WSGI
    if ua is not None:
        environ["HTTP_USER_AGENT"] = ua
    if purpose is not None:
        environ["HTTP_SEC_PURPOSE"] = purpose
    return environ


def through_wsgi(settings: Settings, environ: dict[str, Any]) -> Outcome:
    seen: list[Visit | None] = []
    headers: list[tuple[str, str]] = []

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(current_visit())
        assert env["affy.visit"] is seen[0]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    def start_response(status: str, response_headers: Any, exc_info: Any = None) -> None:
        headers.extend(response_headers)

    middleware = AffyMiddleware(app, settings=settings)
    with fixed_ids_and_clock(), delivery.capture() as events:
        list(middleware(environ, start_response))
    cookies = tuple(value for name, value in headers if name == "Set-Cookie")
    return seen[0], cookies, _events(events)


# -- ASGI -----------------------------------------------------------------------------------


def asgi_scope(
    method: str | None,
    query: str,
    cookies: list[str],
    ua: str | None,
    purpose: str | None,
    scheme: str,
) -> dict[str, Any]:
    headers = [(b"host", b"shop.test")]
    headers += [(b"cookie", value.encode("latin-1")) for value in cookies]  # HTTP/2 splits
    if ua is not None:
        headers.append((b"user-agent", ua.encode("latin-1")))
    if purpose is not None:
        headers.append((b"sec-purpose", purpose.encode("latin-1")))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "2",
        "method": method or "GET",
        "scheme": scheme,
        "path": "/p",
        "raw_path": b"/p",
        "query_string": query.encode("latin-1"),
        "headers": headers,
        "server": ("shop.test", 443),
    }


def through_asgi(settings: Settings, scope: dict[str, Any]) -> Outcome:
    seen: list[Visit | None] = []
    headers: list[tuple[bytes, bytes]] = []

    async def app(scope_: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(current_visit())
        assert scope_["affy.visit"] is seen[0]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers.extend(message["headers"])

    middleware = AffyASGIMiddleware(app, settings=settings)
    with fixed_ids_and_clock(), delivery.capture() as events:
        asyncio.run(middleware(scope, receive, send))
    cookies = tuple(value.decode("latin-1") for name, value in headers if name == b"set-cookie")
    return seen[0], cookies, _events(events)
