"""AffyMiddleware against hand-written WSGI apps, and the WSGI traps a middleware must not
fall into (PEP 3333): ``close()`` exactly once, late ``start_response``, ``exc_info`` and
``write``, ``wsgi.file_wrapper``, the app's own cookies and exceptions left alone."""

from __future__ import annotations

import io
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.test import Client, EnvironBuilder

from affy_middleware import AffyMiddleware, Settings, _defaults, current_visit, delivery
from affy_middleware.attribution import Attribution, Visit
from affy_middleware.attribution.cookies import TOKEN
from affy_middleware.sandbox import SandboxServer

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
SETTINGS = Settings(client_id=3, api_url="http://127.0.0.1:9")

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


def environ(path: str = "/", query: str = "", method: str = "GET", **headers: str) -> Environ:
    builder = EnvironBuilder(path=path, method=method, headers={"User-Agent": CHROME, **headers})
    env: Environ = builder.get_environ()
    env["QUERY_STRING"] = query  # exactly as a server hands it over (latin-1 str)
    return env


class Recorder:
    """A server's start_response: records every call and hands out a write callable."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[tuple[str, str]], Any]] = []
        self.written: list[bytes] = []

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self.calls.append((status, headers, exc_info))
        return self.written.append

    def cookies(self, call: int = -1) -> list[str]:
        return [v for k, v in self.calls[call][1] if k.lower() == "set-cookie"]


def hello(env: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def call(app: Any, env: Environ) -> tuple[Recorder, bytes]:
    rec = Recorder()
    result = app(env, rec)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return rec, body


@pytest.fixture
def events() -> Iterator[list[Any]]:
    with delivery.capture() as captured:
        yield captured


# -- the basics ------------------------------------------------------------------------------


def test_landing_appends_cookies_and_reports_one_click(events: list[Any]) -> None:
    seen: list[Visit | None] = []

    def app(env: Environ, start_response: StartResponse) -> Iterable[bytes]:
        seen.append(current_visit())
        assert env["affy.visit"] is seen[0]
        return hello(env, start_response)

    rec, body = call(AffyMiddleware(app, settings=SETTINGS), environ("/", "ref=aff_demo"))
    assert body == b"hello" and rec.calls[0][0] == "200 OK"
    visit = seen[0]
    assert visit is not None and visit.landed and visit.affiliate_reference == "aff_demo"
    names = [c.split("=", 1)[0] for c in rec.cookies()]
    assert names == ["affy_click_id", "affy_session_id", "affy_click_id_at"]
    assert [e.kind for e in events] == ["click"]
    assert events[0].body["clickedUrl"] == "http://localhost/?ref=aff_demo"
    assert current_visit() is None  # reset after the request


def test_plain_request_passes_through(events: list[Any]) -> None:
    seen: list[Any] = []

    def app(env: Environ, start_response: StartResponse) -> Iterable[bytes]:
        seen.append((current_visit(), env["affy.visit"]))
        return hello(env, start_response)

    rec, body = call(AffyMiddleware(app, settings=SETTINGS), environ())
    assert body == b"hello" and rec.calls == [("200 OK", [("Content-Type", "text/plain")], None)]
    assert seen == [(None, None)] and events == []


def test_returning_visitor_exposes_visit_without_cookies(events: list[Any]) -> None:
    mw = AffyMiddleware(hello, settings=SETTINGS)
    rec, _ = call(mw, environ("/", "ref=aff"))
    cookie = "; ".join(c.split(";", 1)[0] for c in rec.cookies())
    seen: list[Visit | None] = []

    def app(env: Environ, start_response: StartResponse) -> Iterable[bytes]:
        seen.append(current_visit())
        return hello(env, start_response)

    mw.app = app
    rec2, _ = call(mw, environ("/pricing", Cookie=f"theme=dark; {cookie}"))
    assert rec2.cookies() == []
    assert seen[0] is not None and seen[0].affiliate_reference == "aff"
    assert len(events) == 1


# -- the WSGI traps (PEP 3333) -----------------------------------------------------------------


class CountingIterable:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)

    def close(self) -> None:
        self.closed += 1


@pytest.mark.parametrize("query", ["", "ref=aff"])
def test_close_called_exactly_once(query: str, events: list[Any]) -> None:
    body = CountingIterable([b"a", b"b"])

    def app(env: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        return body

    mw = AffyMiddleware(app, settings=SETTINGS)
    result = mw(environ("/", query), Recorder())
    assert result is body  # never wrapped
    response = Client(mw).get("/?" + query, headers={"User-Agent": CHROME})
    assert response.get_data() == b"ab"
    response.close()
    assert body.closed == 1


def test_close_once_when_client_disconnects_mid_body(events: list[Any]) -> None:
    closed = threading.Event()
    counts: list[int] = []

    class Endless:
        def __iter__(self) -> Iterator[bytes]:
            for _ in range(100_000):  # bounded: ~6 GB never reached, the client leaves first
                yield b"x" * 65536

        def close(self) -> None:
            counts.append(1)
            closed.set()

    def app(env: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Endless()

    server = make_server("127.0.0.1", 0, AffyMiddleware(app, settings=SETTINGS), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=10) as sock:
            sock.sendall(
                b"GET /?ref=aff HTTP/1.1\r\nHost: localhost\r\nUser-Agent: "
                + CHROME.encode()
                + b"\r\n\r\n"
            )
            head = sock.recv(65536)
            assert b"affy_click_id=" in head
        assert closed.wait(30)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
    assert counts == [1]


def test_generator_app_calling_start_response_late(events: list[Any]) -> None:
    def app(env: Environ, start_response: StartResponse) -> Iterator[bytes]:
        yield b""  # nothing is started before the first chunk is asked for
        start_response("201 Created", [("X-App", "1")])
        yield b"late"

    rec = Recorder()
    result = AffyMiddleware(app, settings=SETTINGS)(environ("/", "ref=aff"), rec)
    assert rec.calls == []
    assert b"".join(result) == b"late"
    assert rec.calls[0][0] == "201 Created"
    assert ("X-App", "1") in rec.calls[0][1] and len(rec.cookies()) == 3


def test_exc_info_and_write_pass_through(events: list[Any]) -> None:
    captured: dict[str, Any] = {}

    def app(env: Environ, start_response: StartResponse) -> Iterable[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"streamed ")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            import sys

            captured["exc_info"] = sys.exc_info()
            start_response("500 Internal Server Error", [], captured["exc_info"])
        return [b"tail"]

    rec = Recorder()
    result = AffyMiddleware(app, settings=SETTINGS)(environ("/", "ref=aff"), rec)
    assert b"".join(result) == b"tail" and rec.written == [b"streamed "]
    assert rec.calls[0][2] is None and rec.calls[1][2] is captured["exc_info"]
    assert len(rec.cookies(0)) == 3 and len(rec.cookies(1)) == 3


def test_file_wrapper_response_is_not_wrapped(events: list[Any]) -> None:
    class FileWrapper:
        def __init__(self, f: io.BytesIO, block_size: int = 8192) -> None:
            self.f = f

        def __iter__(self) -> Iterator[bytes]:
            return iter([self.f.read()])

        def close(self) -> None:
            self.f.close()

    returned: list[Any] = []

    def app(env: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/pdf")])
        returned.append(env["wsgi.file_wrapper"](io.BytesIO(b"%PDF")))
        return returned[-1]  # type: ignore[no-any-return]

    for query in ("", "ref=aff"):
        env = environ("/file", query)
        env["wsgi.file_wrapper"] = FileWrapper
        result = AffyMiddleware(app, settings=SETTINGS)(env, Recorder())
        assert result is returned[-1] and type(result) is FileWrapper


APP_HEADERS = [("Content-Type", "text/plain"), ("Set-Cookie", "sid=app; Path=/")]


def test_app_set_cookie_kept_and_app_list_untouched(events: list[Any]) -> None:
    def app(env: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("302 Found", APP_HEADERS)  # the same module-level list every time
        return [b""]

    mw = AffyMiddleware(app, settings=SETTINGS)
    for _ in range(2):
        rec, _ = call(mw, environ("/", "ref=aff"))
        assert rec.calls[0][0] == "302 Found"
        assert rec.cookies()[0] == "sid=app; Path=/" and len(rec.cookies()) == 4
    assert APP_HEADERS == [("Content-Type", "text/plain"), ("Set-Cookie", "sid=app; Path=/")]


@pytest.mark.parametrize("query", ["", "ref=aff"])
def test_app_exception_propagates_unchanged(query: str, events: list[Any]) -> None:
    error = ValueError("the app's own")

    def app(env: Environ, start_response: StartResponse) -> Iterable[bytes]:
        raise error

    with pytest.raises(ValueError) as caught:
        AffyMiddleware(app, settings=SETTINGS)(environ("/", query), Recorder())
    assert caught.value is error
    assert current_visit() is None


def test_wrapping_twice_tracks_once(events: list[Any]) -> None:
    seen: list[Visit | None] = []

    def app(env: Environ, start_response: StartResponse) -> Iterable[bytes]:
        seen.append(current_visit())
        return hello(env, start_response)

    twice = AffyMiddleware(AffyMiddleware(app, settings=SETTINGS), settings=SETTINGS)
    rec, _ = call(twice, environ("/", "ref=aff"))
    assert len(rec.cookies()) == 3 and len(events) == 1
    assert seen[0] is not None and seen[0].landed


def test_head_request_gets_page_but_no_tracking(events: list[Any]) -> None:
    rec, body = call(AffyMiddleware(hello, settings=SETTINGS), environ("/", "ref=aff", "HEAD"))
    assert body == b"hello" and rec.cookies() == [] and events == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("ref=caf\xc3\xa9", "café", id="utf8-bytes-as-latin1"),
        pytest.param("ref=caf%C3%A9", "café", id="percent-encoded-utf8"),
        pytest.param("ref=caf\xe9&via=ok", "ok", id="non-utf8-ignored"),
        pytest.param("ref=caf%E9", None, id="percent-non-utf8-ignored"),
        pytest.param("ref=日本", "日本", id="server-decoded-utf8"),
        pytest.param("via=v&aff=a&ref=r", "r", id="several-params-by-settings-order"),
        pytest.param("ref=a%0D%0ASet-Cookie:%20x=1", None, id="crlf-ignored"),
    ],
)
def test_query_decoding(query: str, expected: str | None, events: list[Any]) -> None:
    seen: list[Visit | None] = []

    def app(env: Environ, start_response: StartResponse) -> Iterable[bytes]:
        seen.append(current_visit())
        return hello(env, start_response)

    rec, _ = call(AffyMiddleware(app, settings=SETTINGS), environ("/", query))
    got = seen[0].affiliate_reference if seen[0] is not None else None
    assert got == expected
    for value in rec.cookies():
        name, _, rest = value.partition("=")
        assert TOKEN.fullmatch(rest.split(";", 1)[0])
    if expected is not None:
        assert events[0].body["affiliateReference"] == expected


# -- set-up and failures ------------------------------------------------------------------------


def test_settings_from_env_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFFY_CLIENT_ID", "11")
    mw = AffyMiddleware(hello, ref_params=("partner",))
    assert mw.settings.client_id == 11 and mw.settings.ref_params == ("partner",)
    assert _defaults.default_settings() is mw.settings
    mw2 = AffyMiddleware(hello, settings=SETTINGS, cookie_domain="shop.test")
    assert mw2.settings.cookie_domain == "shop.test" and mw2.settings.client_id == 3


def test_disabled_is_a_pure_pass_through(events: list[Any]) -> None:
    seen: list[Any] = []

    def app(env: Environ, start_response: StartResponse) -> Iterable[bytes]:
        seen.append("affy.visit" in env)
        return hello(env, start_response)

    mw = AffyMiddleware(app, settings=SETTINGS.replace(enabled=False))
    rec, _ = call(mw, environ("/", "ref=aff", Cookie="affy_click_id=abcdefgh12345"))
    assert rec.cookies() == [] and events == [] and seen == [False]


def test_consent_hook_gets_environ(events: list[Any]) -> None:
    asked: list[Any] = []

    def consent(env: Environ) -> bool:
        asked.append(env["PATH_INFO"])
        return env.get("HTTP_X_CONSENT") == "yes"

    mw = AffyMiddleware(hello, settings=SETTINGS, consent=consent)
    rec, _ = call(mw, environ("/a", "ref=aff"))
    assert rec.cookies() == [] and events == []
    rec, _ = call(mw, environ("/b", "ref=aff", **{"X-Consent": "yes"}))
    assert len(rec.cookies()) == 3 and len(events) == 1 and asked == ["/a", "/b"]


def test_tracking_bugs_are_logged_and_the_response_unchanged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("a bug of ours")

    # Every entry of the decision: a landing, a returning visitor, a re-issue check.
    for entry in ("decide",):
        monkeypatch.setattr(Attribution, entry, broken)
    mw = AffyMiddleware(hello, settings=SETTINGS)
    snippet_cookie = "affy_click_id=abcdefgh12345678"  # no companion: a re-issue check
    for env in (environ("/", "ref=aff"), environ("/", Cookie=snippet_cookie)):
        caplog.clear()
        monkeypatch.setattr("affy_middleware._logging.log_failure.last", 0.0)
        with caplog.at_level(logging.ERROR, logger="affy_middleware"):
            rec, body = call(mw, env)
        assert body == b"hello"
        assert rec.calls == [("200 OK", [("Content-Type", "text/plain")], None)]
        assert "deciding the visit failed" in caplog.text and "a bug of ours" in caplog.text
        assert env["affy.visit"] is None


def test_enqueue_failure_is_logged_and_cookies_still_set(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(settings: Settings) -> Any:
        raise RuntimeError("AFFY down and a bug")

    monkeypatch.setattr("affy_middleware._logging.log_failure.last", 0.0)
    monkeypatch.setattr(delivery, "backend_for", broken)
    with caplog.at_level(logging.ERROR, logger="affy_middleware"):
        rec, body = call(AffyMiddleware(hello, settings=SETTINGS), environ("/", "ref=aff"))
    assert body == b"hello" and len(rec.cookies()) == 3
    assert "enqueueing the click failed" in caplog.text


def test_click_reaches_the_sandbox(sandbox: SandboxServer) -> None:
    mw = AffyMiddleware(hello, settings=sandbox.settings())
    response = Client(mw).get(
        "/landing?ref=aff_demo&utm_source=blog",
        headers={"User-Agent": CHROME, "Referer": "https://blog.test/"},
    )
    assert response.status_code == 200
    assert delivery.backend_for(mw.settings).flush(10)
    (click,) = sandbox.events("click")
    assert click["affiliate_reference"] == "aff_demo"
    assert click["body"]["source"] == "blog"
    assert click["body"]["clickedUrl"] == "http://localhost/landing?ref=aff_demo&utm_source=blog"
    assert response.headers.getlist("Set-Cookie")[0].startswith(
        f"affy_click_id={click['body']['clickId']};"
    )


def test_sub_request_without_attribution_hides_the_outer_visit(events: list[Any]) -> None:
    inner_seen: list[Visit | None] = []

    def inner(env: Environ, start_response: StartResponse) -> Iterable[bytes]:
        inner_seen.append(current_visit())
        return hello(env, start_response)

    inner_mw = AffyMiddleware(inner, settings=SETTINGS)

    def outer(env: Environ, start_response: StartResponse) -> Iterable[bytes]:
        assert current_visit() is not None
        call(inner_mw, environ("/internal"))  # a fresh environ: a separate request
        assert current_visit() is env["affy.visit"]
        return hello(env, start_response)

    call(AffyMiddleware(outer, settings=SETTINGS), environ("/", "ref=aff"))
    assert inner_seen == [None] and current_visit() is None


@pytest.mark.parametrize(
    "odd",
    [
        {"HTTP_COOKIE": b"affy_click_id=abcdefgh1234"},
        {"QUERY_STRING": b"ref=aff"},
        {"HTTP_USER_AGENT": None, "QUERY_STRING": "ref=aff"},
        {"REQUEST_METHOD": None, "QUERY_STRING": "ref=aff"},
    ],
)
def test_odd_server_environ_never_breaks_the_app(
    odd: dict[str, Any], events: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("affy_middleware._logging.log_failure.last", 0.0)
    env = environ("/")
    env.update(odd)
    rec, body = call(AffyMiddleware(hello, settings=SETTINGS), env)
    assert body == b"hello" and rec.calls[0][0] == "200 OK"
