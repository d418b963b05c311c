"""The request views: a WSGI environ and an ASGI scope of the same request read alike."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.test import EnvironBuilder

from affy_middleware import Settings
from affy_middleware.attribution import ASGIRequest, Attribution, WSGIRequest

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
HEADER_NAMES = (
    "user-agent",
    "referer",
    "sec-purpose",
    "purpose",
    "x-purpose",
    "x-moz",
    "sec-fetch-mode",
    "cookie",
)


def pair(
    method: str = "GET",
    path: str = "/shop/ünï",
    query: str = "ref=aff&utm_source=blog",
    scheme: str = "https",
    **headers: str,
) -> tuple[WSGIRequest, ASGIRequest]:
    """The same request, as a server hands it to a WSGI and to an ASGI app."""
    builder = EnvironBuilder(
        path=path, method=method, base_url=f"{scheme}://shop.test:8443", headers=headers
    )
    environ: dict[str, Any] = builder.get_environ()
    environ["QUERY_STRING"] = query.encode("utf-8").decode("latin-1")
    raw_path = path.encode("utf-8")
    scope = {
        "type": "http",
        "method": method,
        "scheme": scheme,
        "path": path,
        "raw_path": raw_path,
        "query_string": query.encode("utf-8"),
        "headers": [
            (b"host", b"shop.test:8443"),
            *((name.lower().encode(), value.encode("latin-1")) for name, value in headers.items()),
        ],
        "server": ("127.0.0.1", 8443),
    }
    return WSGIRequest(environ), ASGIRequest(scope)


REQUESTS = [
    pytest.param({}, id="bare"),
    pytest.param(
        {
            "User-Agent": CHROME,
            "Referer": "https://partner.test/r/1",
            "Sec-Fetch-Mode": "navigate",
            "Cookie": "a=1; affy_click_id=abcdefgh12345678",
        },
        id="browser",
    ),
    pytest.param({"User-Agent": "Slackbot 1.0", "Purpose": "prefetch"}, id="preview"),
    pytest.param({"User-Agent": CHROME, "Sec-Purpose": "prefetch;prerender"}, id="prerender"),
]


@pytest.mark.parametrize("headers", REQUESTS)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_wsgi_and_asgi_views_agree(headers: dict[str, str], method: str) -> None:
    wsgi, asgi = pair(method, **headers)
    assert wsgi.method == asgi.method == method
    assert wsgi.scheme == asgi.scheme == "https"
    assert wsgi.host == asgi.host == "shop.test:8443"
    assert wsgi.query_bytes == asgi.query_bytes == b"ref=aff&utm_source=blog"
    assert wsgi.cookie == asgi.cookie == headers.get("Cookie")
    for name in HEADER_NAMES:
        assert wsgi.header(name) == asgi.header(name), name
    # The path as each protocol carries it: the same bytes once WSGI's latin-1 is undone.
    assert isinstance(wsgi.path, str) and wsgi.path.encode("latin-1") == asgi.path


@pytest.mark.parametrize("headers", REQUESTS)
def test_the_decision_is_the_same_from_either_view(headers: dict[str, str]) -> None:
    attribution = Attribution(Settings(client_id=9))
    wsgi, asgi = pair(**headers)
    one = attribution.decide(wsgi, now=1_800_000_000)
    other = attribution.decide(asgi, now=1_800_000_000)
    assert (one is None) == (other is None)
    if one is None or other is None:
        return
    (visit, cookies, event), (visit2, cookies2, event2) = one, other
    assert len(cookies) == len(cookies2) and visit.landed == visit2.landed
    assert visit.affiliate_reference == visit2.affiliate_reference
    if event is not None and event2 is not None:  # ids differ: each landing draws its own
        body, body2 = dict(event.body), dict(event2.body)
        for key in ("clickId", "sessionId"):
            body.pop(key), body2.pop(key)
        assert body == body2
        assert body["clickedUrl"] == "https://shop.test:8443/shop/%C3%BCn%C3%AF?ref=aff&utm_source=blog"
    else:
        assert event is event2 is None


def test_asgi_cookies_split_by_http2_are_joined_and_a_given_cookie_is_kept() -> None:
    scope = {
        "type": "http",
        "method": "GET",
        "query_string": b"",
        "headers": [(b"cookie", b"a=1"), (b"user-agent", b"x"), (b"cookie", b"b=2")],
    }
    assert ASGIRequest(scope).cookie == "a=1; b=2"
    view = ASGIRequest(scope, b"", "given")
    assert view.cookie == "given" and view.header("user-agent") == "x"


def test_wsgi_values_read_by_the_caller_are_kept() -> None:
    environ = {"REQUEST_METHOD": "POST", "QUERY_STRING": "q=1", "HTTP_COOKIE": "a=1"}
    assert (WSGIRequest(environ).query, WSGIRequest(environ).cookie) == ("q=1", "a=1")
    view = WSGIRequest(environ, "", None)
    assert (view.method, view.query, view.cookie, view.scheme) == ("POST", "", None, "http")
