"""AffyASGIMiddleware against hand-written ASGI apps: the visit, cookies and click, and the
ASGI traps (split cookie headers, start messages without headers, several Set-Cookie
headers, streamed bodies, lifespan)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from typing import Any, TypeVar

import httpx
import pytest

from affy_middleware import AffyASGIMiddleware, Settings, _defaults, current_visit, delivery
from affy_middleware.attribution import Attribution, Visit
from affy_middleware.attribution.cookies import TOKEN
from affy_middleware.sandbox import SandboxServer

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
UA = {"User-Agent": CHROME}
SETTINGS = Settings(client_id=3, api_url="http://127.0.0.1:9")
OUR_COOKIES = ["affy_click_id", "affy_session_id", "affy_click_id_at"]

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def get(app: Any, url: str = "/", method: str = "GET", **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        return await client.request(method, url, headers={**UA, **headers})


def ours(response: httpx.Response) -> list[str]:
    return [c for c in response.headers.get_list("set-cookie") if c.split("=", 1)[0] in OUR_COOKIES]


def cookie_header(response: httpx.Response) -> str:
    return "; ".join(c.split(";", 1)[0] for c in ours(response))


async def hello(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"1")]})
    await send({"type": "http.response.body", "body": b"hello"})


def scope_for(path: str = "/", query: bytes = b"", method: str = "GET", **extra: Any) -> Message:
    headers = [(b"host", b"shop.test"), (b"user-agent", CHROME.encode())]
    scope: Message = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("shop.test", 80),
    }
    scope.update(extra)
    return scope


async def call_raw(app: Any, scope: Message) -> list[Message]:
    """Call the app as a server would; returns what it sent."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def set_cookies(message: Message) -> list[bytes]:
    return [v for k, v in message.get("headers", []) if k == b"set-cookie"]


@pytest.fixture
def events() -> Iterator[list[Any]]:
    with delivery.capture() as captured:
        yield captured


# -- the basics ------------------------------------------------------------------------------


def test_landing_appends_cookies_and_reports_one_click(events: list[Any]) -> None:
    seen: list[Any] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        seen.append((current_visit(), scope["affy.visit"], scope["state"]["affy_visit"]))
        await hello(scope, receive, send)

    response = run(get(AffyASGIMiddleware(app, settings=SETTINGS), "/?ref=aff_demo"))
    assert response.status_code == 200 and response.text == "hello"
    visit, in_scope, in_state = seen[0]
    assert visit is in_scope is in_state
    assert visit is not None and visit.landed and visit.affiliate_reference == "aff_demo"
    assert [c.split("=", 1)[0] for c in ours(response)] == OUR_COOKIES
    assert response.headers["x-app"] == "1"
    assert [e.kind for e in events] == ["click"]
    assert events[0].body["clickedUrl"] == "http://shop.test/?ref=aff_demo"
    assert current_visit() is None


def test_plain_request_passes_through_untouched(events: list[Any]) -> None:
    seen: list[Any] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        seen.append((current_visit(), scope["affy.visit"], scope["state"]["affy_visit"]))
        await hello(scope, receive, send)

    sent = run(call_raw(AffyASGIMiddleware(app, settings=SETTINGS), scope_for()))
    assert sent == [
        {"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"1")]},
        {"type": "http.response.body", "body": b"hello"},
    ]
    assert seen == [(None, None, None)] and events == []


def test_returning_visitor_exposes_visit_without_cookies(events: list[Any]) -> None:
    mw = AffyASGIMiddleware(hello, settings=SETTINGS)
    landing = run(get(mw, "/?ref=aff"))
    seen: list[Visit | None] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        seen.append(current_visit())
        await hello(scope, receive, send)

    mw.app = app
    again = run(get(mw, "/pricing", Cookie=f"theme=dark; {cookie_header(landing)}"))
    assert ours(again) == []
    assert seen[0] is not None and seen[0].affiliate_reference == "aff"
    assert seen[0].click_id == landing.cookies["affy_click_id"]
    assert len(events) == 1


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        pytest.param("POST", {}, id="post"),
        pytest.param("HEAD", {}, id="head"),
        pytest.param("GET", {"User-Agent": "Slackbot-LinkExpanding 1.0"}, id="link-preview"),
        pytest.param("GET", {"User-Agent": "Googlebot/2.1"}, id="crawler"),
        pytest.param("GET", {"Sec-Purpose": "prefetch;prerender"}, id="prefetch"),
        pytest.param("GET", {"Purpose": "prefetch"}, id="purpose-prefetch"),
        pytest.param("GET", {"Sec-Fetch-Mode": "cors"}, id="fetch-call"),
    ],
)
def test_not_a_visitor_gets_the_page_but_no_tracking(
    method: str, headers: dict[str, str], events: list[Any]
) -> None:
    response = run(
        get(AffyASGIMiddleware(hello, settings=SETTINGS), "/?ref=aff", method, **headers)
    )
    assert response.status_code == 200
    assert response.text == ("" if method == "HEAD" else "hello")
    assert ours(response) == [] and events == []


# -- the ASGI traps ----------------------------------------------------------------------------


def test_start_message_without_headers_key(events: list[Any]) -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204})
        await send({"type": "http.response.body"})

    mw = AffyASGIMiddleware(app, settings=SETTINGS)
    sent = run(call_raw(mw, scope_for(query=b"ref=aff")))
    assert sent[0]["status"] == 204 and len(set_cookies(sent[0])) == 3
    plain = run(call_raw(mw, scope_for()))
    assert plain[0] == {"type": "http.response.start", "status": 204}  # no key added


APP_HEADERS = [(b"content-type", b"text/plain"), (b"set-cookie", b"sid=app; Path=/")]
APP_START = {"type": "http.response.start", "status": 302, "headers": APP_HEADERS}


def test_app_set_cookies_kept_and_app_messages_untouched(events: list[Any]) -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await send(APP_START)  # the same module-level message and list every time
        await send({"type": "http.response.body", "body": b""})

    mw = AffyASGIMiddleware(app, settings=SETTINGS)
    for _ in range(2):
        response = run(get(mw, "/?ref=aff"))
        assert response.status_code == 302
        cookies = response.headers.get_list("set-cookie")
        assert cookies[0] == "sid=app; Path=/" and len(cookies) == 4
    assert APP_HEADERS == [(b"content-type", b"text/plain"), (b"set-cookie", b"sid=app; Path=/")]
    assert APP_START["headers"] is APP_HEADERS


def test_multiple_app_set_cookie_headers(events: list[Any]) -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        headers = [(b"set-cookie", b"a=1"), (b"x-app", b"1"), (b"set-cookie", b"b=2; HttpOnly")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    response = run(get(AffyASGIMiddleware(app, settings=SETTINGS), "/?ref=aff"))
    cookies = response.headers.get_list("set-cookie")
    assert cookies[:2] == ["a=1", "b=2; HttpOnly"] and len(cookies) == 5
    assert response.cookies["a"] == "1" and response.cookies["b"] == "2"


def test_streamed_body_in_several_messages(events: list[Any]) -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(5):
            await send({"type": "http.response.body", "body": b"chunk%d," % i, "more_body": True})
        await send({"type": "http.response.body", "body": b"end", "more_body": False})

    mw = AffyASGIMiddleware(app, settings=SETTINGS)
    sent = run(call_raw(mw, scope_for(query=b"ref=aff")))
    assert len(sent) == 7 and len(set_cookies(sent[0])) == 3
    assert all(set_cookies(m) == [] for m in sent[1:])
    assert [m.get("more_body") for m in sent[1:]] == [True] * 5 + [False]
    response = run(get(mw, "/?ref=aff"))
    assert response.text == "chunk0,chunk1,chunk2,chunk3,chunk4,end"


def test_trailers_pass_through(events: list[Any]) -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
        await send({"type": "http.response.body", "body": b"data"})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"42")]})

    sent = run(call_raw(AffyASGIMiddleware(app, settings=SETTINGS), scope_for(query=b"ref=aff")))
    assert sent[0]["trailers"] is True and len(set_cookies(sent[0])) == 3
    assert sent[2] == {"type": "http.response.trailers", "headers": [(b"x-checksum", b"42")]}


def test_request_body_streams_to_the_app(events: list[Any]) -> None:
    chunks = [b"a" * 10, b"b" * 10, b""]
    got: list[bytes] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            got.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        await hello(scope, receive, send)

    async def go() -> None:
        queue = list(chunks)

        async def receive() -> Message:
            body = queue.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(queue)}

        async def send(message: Message) -> None:
            pass

        mw = AffyASGIMiddleware(app, settings=SETTINGS)
        await mw(scope_for(method="POST", query=b"ref=aff"), receive, send)

    run(go())
    assert got == chunks


def test_head_response_passes_through(events: list[Any]) -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        headers = [(b"content-length", b"5")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    sent = run(
        call_raw(AffyASGIMiddleware(app, settings=SETTINGS), scope_for("/", b"ref=a", "HEAD"))
    )
    assert sent[0]["headers"] == [(b"content-length", b"5")] and events == []


@pytest.mark.parametrize("query", [b"", b"ref=aff"])
@pytest.mark.parametrize("when", ["before-start", "after-start", "mid-body"])
def test_app_exception_propagates_unchanged(query: bytes, when: str, events: list[Any]) -> None:
    error = ValueError("the app's own")
    sent: list[Message] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if when != "before-start":
            await send({"type": "http.response.start", "status": 200, "headers": []})
        if when == "mid-body":
            await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise error

    async def go() -> None:
        async def receive() -> Message:
            return {"type": "http.request", "body": b""}

        async def send(message: Message) -> None:
            sent.append(message)

        await AffyASGIMiddleware(app, settings=SETTINGS)(scope_for(query=query), receive, send)

    with pytest.raises(ValueError) as caught:
        run(go())
    assert caught.value is error
    if when != "before-start":
        assert len(set_cookies(sent[0])) == (3 if query else 0)
    assert current_visit() is None


def test_exception_reaches_the_client_transport(events: list[Any]) -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        run(get(AffyASGIMiddleware(app, settings=SETTINGS), "/?ref=aff"))


def test_wrapping_twice_tracks_once(events: list[Any]) -> None:
    seen: list[Visit | None] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        seen.append(current_visit())
        await hello(scope, receive, send)

    twice = AffyASGIMiddleware(AffyASGIMiddleware(app, settings=SETTINGS), settings=SETTINGS)
    response = run(get(twice, "/?ref=aff"))
    assert len(ours(response)) == 3 and len(events) == 1
    assert seen[0] is not None and seen[0].landed


def test_split_cookie_headers_are_joined(events: list[Any]) -> None:
    mw = AffyASGIMiddleware(hello, settings=SETTINGS)
    landing = run(get(mw, "/?ref=aff"))
    seen: list[Visit | None] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        seen.append(current_visit())
        await hello(scope, receive, send)

    mw.app = app
    scope = scope_for("/pricing")
    # HTTP/2 servers may hand each cookie over as its own header.
    scope["headers"] += [(b"cookie", b"theme=dark")] + [
        (b"cookie", c.split(";", 1)[0].encode()) for c in ours(landing)
    ]
    sent = run(call_raw(mw, scope))
    assert set_cookies(sent[0]) == []
    assert seen[0] is not None and seen[0].affiliate_reference == "aff"


def test_no_host_header_uses_server(events: list[Any]) -> None:
    scope = scope_for(query=b"ref=aff", scheme="https")
    scope["headers"] = [(b"user-agent", CHROME.encode())]
    scope["server"] = ("10.0.0.5", 8443)
    sent = run(call_raw(AffyASGIMiddleware(hello, settings=SETTINGS), scope))
    assert all(b"; Secure" in c for c in set_cookies(sent[0]))
    assert events[0].body["clickedUrl"] == "https://10.0.0.5:8443/?ref=aff"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param(b"ref=caf\xc3\xa9", "café", id="raw-utf8"),
        pytest.param(b"ref=caf%C3%A9", "café", id="percent-encoded-utf8"),
        pytest.param(b"ref=caf\xe9&via=ok", "ok", id="non-utf8-ignored"),
        pytest.param(b"ref=caf%E9", None, id="percent-non-utf8-ignored"),
        pytest.param(b"via=v&aff=a&ref=r", "r", id="several-params-by-settings-order"),
        pytest.param(b"ref=a%0D%0ASet-Cookie:%20x=1", None, id="crlf-ignored"),
        pytest.param(b"ref=" + b"x" * 129, None, id="too-long"),
    ],
)
def test_query_decoding(query: bytes, expected: str | None, events: list[Any]) -> None:
    seen: list[Visit | None] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        seen.append(current_visit())
        await hello(scope, receive, send)

    sent = run(call_raw(AffyASGIMiddleware(app, settings=SETTINGS), scope_for(query=query)))
    got = seen[0].affiliate_reference if seen[0] is not None else None
    assert got == expected
    for value in set_cookies(sent[0]):
        assert TOKEN.fullmatch(value.decode().split("=", 1)[1].split(";", 1)[0])
    if expected is not None:
        assert events[0].body["affiliateReference"] == expected


# -- contextvars -------------------------------------------------------------------------------


def test_visit_visible_in_tasks_and_threads(events: list[Any]) -> None:
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        async def task() -> Visit | None:
            await asyncio.sleep(0)
            return current_visit()

        seen["task"] = await asyncio.create_task(task())
        seen["thread"] = await asyncio.to_thread(current_visit)
        from anyio import to_thread

        seen["anyio"] = await to_thread.run_sync(current_visit)
        await hello(scope, receive, send)

    run(get(AffyASGIMiddleware(app, settings=SETTINGS), "/?ref=ctx"))
    assert {k: v.affiliate_reference if v else None for k, v in seen.items()} == {
        "task": "ctx",
        "thread": "ctx",
        "anyio": "ctx",
    }


def test_concurrent_requests_keep_their_own_visit(events: list[Any]) -> None:
    seen: dict[str, str | None] = {}

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        mine = scope["query_string"].decode().split("=", 1)[1]
        await asyncio.sleep(0.01 if mine.endswith("0") else 0)  # interleave the requests
        visit = current_visit()
        seen[mine] = visit.affiliate_reference if visit else None
        await hello(scope, receive, send)

    async def go() -> None:
        mw = AffyASGIMiddleware(app, settings=SETTINGS)
        await asyncio.gather(*(get(mw, f"/?ref=aff{i}") for i in range(10)))

    run(go())
    assert seen == {f"aff{i}": f"aff{i}" for i in range(10)}


# -- other scopes ------------------------------------------------------------------------------


def test_websocket_scope_passes_through(events: list[Any]) -> None:
    calls: list[Any] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        calls.append((scope is ws_scope, "affy.visit" in scope, current_visit(), receive, send))

    ws_scope = scope_for(query=b"ref=aff", type="websocket")

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        pass

    run(AffyASGIMiddleware(app, settings=SETTINGS)(ws_scope, receive, send))
    assert calls == [(True, False, None, receive, send)] and events == []


class LifespanApp:
    """Answers the lifespan protocol; records what happened, and optionally reports an
    event from its shutdown handler."""

    def __init__(self, on_shutdown: Callable[[], None] | None = None) -> None:
        self.log: list[str] = []
        self.on_shutdown = on_shutdown

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan"
        while True:
            message = await receive()
            self.log.append(message["type"])
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.on_shutdown is not None:
                    self.on_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def drive_lifespan(app: Any, between: Callable[[], Awaitable[None]] | None = None) -> list:
    """Be the server: startup, (work), shutdown; returns what the app sent."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, send)
    )
    await inbox.put({"type": "lifespan.startup"})
    for _ in range(200):
        if sent or task.done():
            break
        await asyncio.sleep(0.01)
    if between is not None:
        await between()
    await inbox.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(task, 20)
    return [m["type"] for m in sent]


def test_lifespan_passes_through_and_flushes_after_the_app_shut_down(
    sandbox: SandboxServer,
) -> None:
    # A short budget: events other tests left for an unreachable AFFY in this process's
    # other dispatchers would hold a longer one up (the middleware's own go first).
    settings = sandbox.settings(flush_timeout=4)
    sandbox.set_faults(latency=0.3)  # nothing is delivered by chance before the flush
    mw = AffyASGIMiddleware(hello, settings=settings)

    def report_on_shutdown() -> None:  # the app's own shutdown handler reports an event
        from affy_middleware import report_payment

        assert report_payment("5.00", session_id="shutdown-session")

    app = LifespanApp(on_shutdown=report_on_shutdown)
    mw.app = app

    async def landing() -> None:
        mw.app = hello
        await get(mw, "/?ref=lifespan")
        mw.app = app

    sent = run(drive_lifespan(mw, landing))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert app.log == ["lifespan.startup", "lifespan.shutdown"]
    # No flush() here: the shutdown message went out only after the queue was delivered.
    assert sorted(e["kind"] for e in sandbox.events()) == ["click", "payment"]


@pytest.mark.parametrize("kind", ["raises", "returns"])
def test_app_without_lifespan_support_is_answered_for(kind: str, sandbox: SandboxServer) -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            if kind == "raises":
                raise ValueError("only http")  # what Django's ASGIHandler does
            return
        await hello(scope, receive, send)

    sandbox.set_faults(latency=0.3)
    mw = AffyASGIMiddleware(app, settings=sandbox.settings(flush_timeout=4))

    async def landing() -> None:
        await get(mw, "/?ref=nolifespan")

    sent = run(drive_lifespan(mw, landing))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert [e["kind"] for e in sandbox.events()] == ["click"]


def test_lifespan_failure_after_startup_propagates() -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        raise RuntimeError("database unreachable")

    with pytest.raises(RuntimeError, match="database unreachable"):
        run(drive_lifespan(AffyASGIMiddleware(app, settings=SETTINGS)))


def test_no_shutdown_flush_when_turned_off() -> None:
    app = LifespanApp()
    mw = AffyASGIMiddleware(app, settings=SETTINGS, flush_on_shutdown=False)
    assert run(drive_lifespan(mw)) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_shutdown_flush_is_bounded_when_affy_is_down() -> None:
    settings = Settings(client_id=3, api_url="http://127.0.0.1:9", flush_timeout=0.5)
    mw = AffyASGIMiddleware(hello, settings=settings)
    mw.app = LifespanApp()

    async def landing() -> None:
        mw.app, app = hello, mw.app
        await get(mw, "/?ref=down")
        mw.app = app

    loop_time: list[float] = []

    async def go() -> list[str]:
        t0 = asyncio.get_running_loop().time()
        result = await drive_lifespan(mw, landing)
        loop_time.append(asyncio.get_running_loop().time() - t0)
        return result

    assert run(go()) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert loop_time[0] < 10  # bounded by flush_timeout (generous: shared CPUs)
    delivery.backend_for(settings).close(0.1)


# -- set-up and failures -----------------------------------------------------------------------


def test_settings_from_env_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFFY_CLIENT_ID", "11")
    mw = AffyASGIMiddleware(hello, ref_params=("partner",))
    assert mw.settings.client_id == 11 and mw.settings.ref_params == ("partner",)
    assert _defaults.default_settings() is mw.settings
    mw2 = AffyASGIMiddleware(hello, settings=SETTINGS, cookie_domain="shop.test")
    assert mw2.settings.cookie_domain == "shop.test" and mw2.settings.client_id == 3
    assert "AffyASGIMiddleware" in repr(mw2) and "api_key" in repr(mw2)


def test_bad_settings_fail_at_set_up(monkeypatch: pytest.MonkeyPatch) -> None:
    from affy_middleware import AffyConfigError

    monkeypatch.setenv("AFFY_CLIENT_ID", "abc")
    with pytest.raises(AffyConfigError, match="AFFY_CLIENT_ID"):
        AffyASGIMiddleware(hello)
    with pytest.raises(AffyConfigError):
        AffyASGIMiddleware(hello, settings=SETTINGS, api_url="http://affy.example.com")
    with pytest.raises(TypeError, match="consent"):
        AffyASGIMiddleware(hello, settings=SETTINGS, consent="yes")  # type: ignore[arg-type]


def test_disabled_is_a_pure_pass_through(events: list[Any]) -> None:
    seen: list[bool] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        seen.append("affy.visit" in scope)
        await hello(scope, receive, send)

    mw = AffyASGIMiddleware(app, settings=SETTINGS.replace(enabled=False))
    response = run(get(mw, "/?ref=aff", Cookie="affy_click_id=abcdefgh12345"))
    assert ours(response) == [] and events == [] and seen == [False]


def test_inactive_settings_read_visits_but_write_nothing(events: list[Any]) -> None:
    seen: list[Visit | None] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        seen.append(current_visit())
        await hello(scope, receive, send)

    mw = AffyASGIMiddleware(app, settings=Settings(client_id=None))
    response = run(get(mw, "/?ref=aff", Cookie="affy_click_id=abcdefgh12345"))
    assert ours(response) == [] and events == []
    assert seen[0] is not None and seen[0].click_id == "abcdefgh12345"


def test_consent_hook_gets_the_scope(events: list[Any]) -> None:
    asked: list[str] = []

    def consent(scope: dict[str, Any]) -> bool:
        asked.append(scope["path"])
        return (b"x-consent", b"yes") in scope["headers"]

    mw = AffyASGIMiddleware(hello, settings=SETTINGS, consent=consent)
    denied = run(get(mw, "/a?ref=aff"))
    assert ours(denied) == [] and events == []
    granted = run(get(mw, "/b?ref=aff", **{"X-Consent": "yes"}))
    assert len(ours(granted)) == 3 and len(events) == 1 and asked == ["/a", "/b"]


def test_consent_cookie(events: list[Any]) -> None:
    mw = AffyASGIMiddleware(hello, settings=SETTINGS.replace(consent_cookie="cookie_ok"))
    assert ours(run(get(mw, "/?ref=aff"))) == []
    assert len(ours(run(get(mw, "/?ref=aff", Cookie="cookie_ok=yes")))) == 3
    assert len(events) == 1


@pytest.mark.parametrize(
    ("query", "cookie"),
    [
        pytest.param(b"ref=aff", "", id="landing"),
        pytest.param(b"", "affy_click_id=abcdefgh12345; affy_click_id_at=1.0", id="returning"),
        pytest.param(b"", "affy_click_id=abcdefgh12345", id="snippet-cookie"),
    ],
)
def test_tracking_bugs_are_logged_and_the_response_unchanged(
    query: bytes,
    cookie: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    events: list[Any],
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("a bug of ours")

    monkeypatch.setattr("affy_middleware._logging.log_failure.last", 0.0)
    for entry in ("decide", "might_land"):
        monkeypatch.setattr(Attribution, entry, broken)
    seen: list[Any] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        seen.append((current_visit(), scope["affy.visit"]))
        await hello(scope, receive, send)

    scope = scope_for(query=query)
    if cookie:
        scope["headers"].append((b"cookie", cookie.encode()))
    with caplog.at_level(logging.ERROR, logger="affy_middleware"):
        sent = run(call_raw(AffyASGIMiddleware(app, settings=SETTINGS), scope))
    assert sent[0] == {"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"1")]}
    assert seen == [(None, None)] and events == []
    assert "deciding the visit failed" in caplog.text and "a bug of ours" in caplog.text


def test_enqueue_failure_is_logged_and_cookies_still_set(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(settings: Settings) -> Any:
        raise RuntimeError("AFFY down and a bug")

    monkeypatch.setattr("affy_middleware._logging.log_failure.last", 0.0)
    monkeypatch.setattr(delivery, "backend_for", broken)
    with caplog.at_level(logging.ERROR, logger="affy_middleware"):
        response = run(get(AffyASGIMiddleware(hello, settings=SETTINGS), "/?ref=aff"))
    assert response.text == "hello" and len(ours(response)) == 3
    assert "enqueueing the click failed" in caplog.text


def test_click_reaches_the_sandbox(sandbox: SandboxServer) -> None:
    mw = AffyASGIMiddleware(hello, settings=sandbox.settings())
    response = run(get(mw, "/landing?ref=aff_demo&utm_source=blog", Referer="https://blog.test/"))
    assert response.status_code == 200
    assert delivery.backend_for(mw.settings).flush(10)
    (click,) = sandbox.events("click")
    assert click["affiliate_reference"] == "aff_demo"
    assert click["body"]["source"] == "blog"
    assert click["body"]["referrerUrl"] == "https://blog.test/"
    assert click["body"]["clickedUrl"] == "http://shop.test/landing?ref=aff_demo&utm_source=blog"
    assert response.cookies["affy_click_id"] == click["body"]["clickId"]


def test_sync_delivery_keeps_the_loop_free(sandbox: SandboxServer) -> None:
    """AFFY_DELIVERY=sync sends the click inline, but in a worker thread: other requests
    on the same loop are served meanwhile."""
    sandbox.set_faults(latency=1.0)  # wide margin: the plain request needs milliseconds
    mw = AffyASGIMiddleware(hello, settings=sandbox.settings(delivery="sync", timeout=10))
    order: list[str] = []

    async def go() -> None:
        async def landing() -> None:
            await get(mw, "/?ref=sync_aff")
            order.append("landing")

        async def plain() -> None:
            await asyncio.sleep(0.05)
            await get(mw, "/")
            order.append("plain")

        await asyncio.gather(landing(), plain())

    run(go())
    assert order == ["plain", "landing"]
    # Delivered before the landing's response: no flush needed.
    assert [e["affiliate_reference"] for e in sandbox.events("click")] == ["sync_aff"]


def test_custom_cookie_names_without_a_shared_prefix(events: list[Any]) -> None:
    settings = SETTINGS.replace(click_cookie="cid", session_cookie="visit")
    seen: list[Visit | None] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        seen.append(current_visit())
        await hello(scope, receive, send)

    mw = AffyASGIMiddleware(app, settings=settings)
    landing = run(get(mw, "/?ref=custom"))
    names = [c.split("=", 1)[0] for c in landing.headers.get_list("set-cookie")]
    assert names == ["cid", "visit", "cid_at"]
    run(get(mw, "/", Cookie=f"visit={landing.cookies['visit']}"))  # the session cookie alone
    assert seen[1] is not None and seen[1].session_id == landing.cookies["visit"]


def test_state_that_is_not_a_dict_is_left_alone(events: list[Any]) -> None:
    class Frozen(Mapping[str, Any]):
        def __getitem__(self, key: str) -> Any:
            raise KeyError(key)

        def __iter__(self) -> Iterator[str]:
            return iter(())

        def __len__(self) -> int:
            return 0

    scope = scope_for(query=b"ref=aff", state=Frozen())
    sent = run(call_raw(AffyASGIMiddleware(hello, settings=SETTINGS), scope))
    assert len(set_cookies(sent[0])) == 3 and scope["affy.visit"].affiliate_reference == "aff"
