"""Bad input, property-based: random raw query strings, cookies and user agents through a
Starlette app, with and without AffyASGIMiddleware, called the way a server calls it."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import quote

import pytest
from _strategies import (
    EXAMPLES,
    OUR_COOKIE_PATTERN,
    forged_cookies,
    messy,
    methods,
    user_agents,
)
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from affy_middleware import AffyASGIMiddleware, Settings, delivery, track_registration
from affy_middleware.attribution.cookies import TOKEN

OUR_COOKIE = re.compile(OUR_COOKIE_PATTERN.encode())


def build(tracked: bool) -> Starlette:
    async def index(request: Request) -> PlainTextResponse:
        headers = {"X-App": "1", "Set-Cookie": "a=1"}
        return PlainTextResponse("page:" + request.query_params.get("q", ""), 203, headers)

    @track_registration
    async def signup(request: Request) -> PlainTextResponse:
        return PlainTextResponse("signed", 201)

    async def boom(request: Request) -> PlainTextResponse:
        raise ValueError("app bug")

    app = Starlette(
        routes=[
            Route("/", index, methods=["GET", "POST", "HEAD"]),
            Route("/signup", signup, methods=["POST"]),
            Route("/boom", boom),
        ]
    )
    if tracked:
        settings = Settings(client_id=1, api_url="http://127.0.0.1:9")
        app.add_middleware(AffyASGIMiddleware, settings=settings)
    return app


BARE = build(False)
TRACKED = build(True)


def call(
    app: Any, method: str, path: str, query: str, cookie: str, ua: str
) -> tuple[list[dict[str, Any]], BaseException | None]:
    """What the app sent (status, headers, body messages) and what it raised."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": [
            (b"host", b"shop.test"),
            (b"cookie", cookie.encode("latin-1")),
            (b"user-agent", ua.encode("latin-1")),
            (b"content-type", b"application/x-www-form-urlencoded"),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("shop.test", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"email=p%40example.com", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def go() -> BaseException | None:
        try:
            await app(scope, receive, send)
        except Exception as exc:
            return exc
        return None

    return sent, asyncio.run(go())


def split(sent: list[dict[str, Any]]) -> tuple[list[Any], list[bytes]]:
    """(the messages without our cookies, our Set-Cookie values)."""
    ours: list[bytes] = []
    messages: list[Any] = []
    for message in sent:
        if message["type"] == "http.response.start":
            headers = []
            for name, value in message["headers"]:
                if name == b"set-cookie" and value != b"a=1":
                    ours.append(value)
                else:
                    headers.append((name, value))
            message = {**message, "headers": headers}
        messages.append(message)
    return messages, ours


@EXAMPLES
@given(
    method=methods,
    query=messy,
    cookie=messy,
    ua=user_agents,
)
def test_status_body_and_headers_never_change(
    method: str, query: str, cookie: str, ua: str
) -> None:
    with delivery.capture() as events:
        tracked, error = call(TRACKED, method, "/", query, cookie, ua)
    bare, bare_error = call(BARE, method, "/", query, cookie, ua)
    assert error is None and bare_error is None
    messages, ours = split(tracked)
    assert messages == bare
    for value in ours:
        assert OUR_COOKIE.match(value), value
        assert b"\r" not in value and b"\n" not in value
    for event in events:
        assert TOKEN.fullmatch(event.body["clickId"])
        assert TOKEN.fullmatch(event.body["sessionId"])
        ref = event.body["affiliateReference"]
        assert ref.isprintable() and 0 < len(ref) <= 128


@EXAMPLES
@given(cookie=messy, query=messy)
def test_forged_or_oversized_cookies_are_ignored(cookie: str, query: str) -> None:
    header, forged, oversized = forged_cookies(cookie)
    with delivery.capture() as events:
        sent, error = call(TRACKED, "POST", "/signup", query, header, "Mozilla/5.0 Chrome/1")
    assert error is None and sent[0]["status"] == 201
    assert events == []  # not a referred visitor: nothing reported, nothing forwarded
    with delivery.capture() as events:
        landing, _ = call(TRACKED, "GET", "/", "ref=aff", header, "Mozilla/5.0 Chrome/1")
    assert landing[0]["status"] == 203
    (click,) = events
    assert click.body["sessionId"] != oversized and click.body["clickId"] != forged
    assert all(OUR_COOKIE.match(c) for c in split(landing)[1])


@EXAMPLES
@given(ref=st.text(max_size=140), other=st.text(max_size=20))
def test_no_header_injection_from_refs(ref: str, other: str) -> None:
    query = f"ref={quote(ref)}&utm_source={quote(other)}"
    with delivery.capture() as events:
        sent, _ = call(TRACKED, "GET", "/", query, "", "Mozilla/5.0 Chrome/1")
    ours = split(sent)[1]
    for value in ours:
        assert OUR_COOKIE.match(value), value
    plausible = ref.strip(" ")
    if plausible and len(plausible) <= 128 and plausible.isprintable():
        assert events[0].body["affiliateReference"] == plausible
    else:
        assert events == [] and ours == []


@pytest.mark.parametrize("query", ["", "ref=aff"])
def test_a_view_that_raises_still_raises(query: str) -> None:
    with delivery.capture() as events:
        tracked, error = call(TRACKED, "GET", "/boom", query, "", "Mozilla/5.0 Chrome/1")
    bare, bare_error = call(BARE, "GET", "/boom", query, "", "Mozilla/5.0 Chrome/1")
    assert type(error) is type(bare_error) is ValueError
    assert split(tracked)[0] == bare and tracked[0]["status"] == 500
    assert len(events) == (1 if query else 0)
