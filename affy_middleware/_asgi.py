"""The ASGI middleware: ``app = AffyASGIMiddleware(app)`` or ``app.add_middleware(...)``."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Final

from . import delivery
from ._resolution import resolve
from ._settings import Settings
from ._visit import REISSUE, Attribution, ConsentHook, Decision, Visit, _current
from ._wsgi import log_failure

__all__ = ["AffyASGIMiddleware", "SCOPE_KEY", "STATE_KEY", "visit_of"]

logger = logging.getLogger("affy_middleware")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Where the request's ``Visit`` (or None) is put in the scope.
SCOPE_KEY: Final = "affy.visit"
#: Key in ``scope["state"]``: Starlette/FastAPI read it as ``request.state.affy_visit``.
STATE_KEY: Final = "affy_visit"

#: Request header (lower-case bytes) -> the name the visit rules look it up by (besides
#: ``cookie``, which is read, and joined when split, with the host).
_HEADERS: Final = {
    b"user-agent": "user-agent",
    b"referer": "referer",
    b"sec-purpose": "sec-purpose",
    b"purpose": "purpose",
    b"x-purpose": "x-purpose",
    b"x-moz": "x-moz",
    b"sec-fetch-mode": "sec-fetch-mode",
}
_SHUTDOWN_DONE: Final = frozenset({"lifespan.shutdown.complete", "lifespan.shutdown.failed"})


def visit_of(scope: Mapping[str, Any]) -> Visit | None:
    """The visit the middleware put in an ASGI ``scope`` (None: no middleware, no visit)."""
    visit = scope.get(SCOPE_KEY)
    return visit if isinstance(visit, Visit) else None


class AffyASGIMiddleware:
    """Pure ASGI middleware that recognises affiliate landings and keeps their attribution.

    ::

        app = AffyASGIMiddleware(app)                              # any ASGI app
        app.add_middleware(AffyASGIMiddleware)                     # FastAPI, Starlette
        application = AffyASGIMiddleware(get_asgi_application())   # Django

    The same rules as :class:`AffyMiddleware` (WSGI). ``settings`` defaults to
    ``Settings.from_env(**setting_overrides)``; ``consent`` is called with the scope. The
    visit is ``current_visit()`` in the endpoint (and in tasks it starts),
    ``scope["affy.visit"]`` and ``request.state.affy_visit``. The only change to the
    response is ``Set-Cookie`` headers appended to ``http.response.start``. ``websocket``
    scopes pass through; on ``lifespan`` shutdown the event queue is flushed, bounded by
    ``flush_timeout`` (``flush_on_shutdown=False`` turns that off).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings | None = None,
        consent: ConsentHook | None = None,
        flush_on_shutdown: bool = True,
        **setting_overrides: Any,
    ) -> None:
        settings = resolve(settings, setting_overrides)
        self.app = app
        self.settings = settings
        self.flush_on_shutdown = flush_on_shutdown
        # Disabled outright (AFFY_ENABLED=0): a pure pass-through, not even cookies are read.
        self._attribution = Attribution(settings, consent) if settings.enabled else None
        click = settings.click_cookie.encode("latin-1") + b"="
        session = settings.session_cookie.encode("latin-1") + b"="
        # One substring test tells "no cookie of ours" when both names share a prefix
        # ("affy_"); a false alarm only costs a closer look at the cookie header.
        shared = click[: len(os.path.commonprefix([click.decode(), session.decode()]))]
        self._needle = shared if len(shared) >= 4 else click
        self._other_needle: bytes | None = None if len(shared) >= 4 else session

    def __repr__(self) -> str:
        return f"AffyASGIMiddleware({self.app!r}, settings={self.settings!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and self.flush_on_shutdown:
                return await self._lifespan(scope, receive, send)
            return await self.app(scope, receive, send)
        attribution = self._attribution
        if attribution is None or SCOPE_KEY in scope:
            # Wrapped twice: the outer middleware already tracked this request.
            return await self.app(scope, receive, send)
        visit = decision = None
        try:  # free when nothing raises (3.11+); a server's odd scope must not hurt
            query = scope.get("query_string")
            if (
                query
                and attribution.writes
                and scope["method"] == "GET"
                and attribution.might_land(query)
            ):
                decision = self._decide(scope, query)  # maybe an affiliate landing
            else:
                # No cookie of ours, no visit. Header names are lower-case in ASGI
                # (Starlette's Headers relies on that too).
                needle, other = self._needle, self._other_needle
                for name, value in scope["headers"]:
                    if name == b"cookie" and (needle in value or (other and other in value)):
                        # A returning visitor: the visit reads the rest when asked.
                        cookie = _cookie_header(scope["headers"])
                        visit = attribution.returning(scope["method"], cookie, scope)
                        if visit is REISSUE:  # a click cookie AFFY's snippet wrote, maybe
                            visit = None
                            decision = self._decide(scope, None)
                        break
        except Exception:
            log_failure("deciding the visit")
        if decision is not None:
            visit, cookies, event = decision
            if event is not None:
                await self._enqueue(event)
            if cookies:
                send = _with_cookies(send, cookies)
        _expose(scope, visit)
        if visit is None:
            # Each request runs in its own task, whose context holds no visit: unlike
            # WSGI threads, nothing is left over from an earlier request to reset.
            return await self.app(scope, receive, send)
        token = _current.set(visit)
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)

    def _decide(self, scope: Scope, query: bytes | None) -> Decision | None:
        """The full decision: a GET whose query may land (``query``), or a re-issue check."""
        attribution = self._attribution
        assert attribution is not None
        headers = scope["headers"]
        method = scope["method"]
        scheme = scope.get("scheme") or "http"
        if query is None:
            return attribution.decide_cookies(method, scheme, _lazy_headers(headers), scope)
        # A GET that may land: the rules read most of the headers then, about ten lookups,
        # so one pass builds their table and the lookup is its ``dict.get`` (a Python
        # closure per lookup cost several µs per landing once served).
        table: dict[str, str] = {}
        host = None
        wanted = _HEADERS.get
        for raw_name, raw_value in headers:
            name = wanted(raw_name)
            if name is not None:
                if name not in table:
                    table[name] = raw_value.decode("latin-1")
            elif raw_name == b"cookie":
                value = raw_value.decode("latin-1")
                seen = table.get("cookie")
                table["cookie"] = value if seen is None else f"{seen}; {value}"  # HTTP/2 splits
            elif raw_name == b"host" and host is None:
                host = raw_value.decode("latin-1")
        if not host:
            server = scope.get("server")
            host = f"{server[0]}:{server[1]}" if server else ""
        raw_path = scope.get("raw_path")
        if raw_path:
            path = bytes(raw_path).split(b"?", 1)[0]
        else:
            path = str(scope.get("path") or "/").encode("utf-8", "surrogateescape")
        return attribution.decide_query(method, scheme, host, path, query, table.get, scope)

    async def _enqueue(self, event: Any) -> None:
        try:
            backend = delivery.backend_for(self.settings)
            if backend.blocks:  # it sends inline: keep the HTTP call off the event loop
                from anyio import to_thread

                await to_thread.run_sync(backend.submit, event)
            else:
                backend.submit(event)
        except Exception:
            log_failure("enqueueing the click")

    # -- lifespan -----------------------------------------------------------------------

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        asked = False
        flushed = False

        async def receive_() -> Message:
            nonlocal asked
            asked = True
            return await receive()

        async def send_(message: Message) -> None:
            nonlocal flushed
            if message.get("type") in _SHUTDOWN_DONE and not flushed:
                # After the app's own shutdown handlers, which may report events too.
                flushed = True
                await self.flush()
            await send(message)

        try:
            await self.app(scope, receive_, send_)
        except Exception:
            if asked:
                raise
            logger.debug("affy_middleware: the app does not handle lifespan", exc_info=True)
        if not asked:
            # The app does not speak lifespan (Django, plain apps): answer for it, so the
            # server still tells us when it stops.
            await self._answer_lifespan(receive, send)

    async def _answer_lifespan(self, receive: Receive, send: Send) -> None:
        for _ in range(8):  # startup, shutdown; a misbehaving server can't keep us here
            message = await receive()
            kind = message.get("type")
            if kind == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif kind == "lifespan.shutdown":
                await self.flush()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def flush(self, timeout: float | None = None) -> bool:
        """Deliver what is queued, in a worker thread, for at most ``timeout`` seconds in
        all (default ``flush_timeout``): this middleware's events first, then those of any
        other settings in the process. True if everything was delivered. Never raises."""
        limit = self.settings.flush_timeout if timeout is None else timeout
        try:
            from anyio import to_thread

            return await to_thread.run_sync(self._flush_all, limit)
        except Exception:
            log_failure("flushing the event queue")
            return False

    def _flush_all(self, limit: float) -> bool:
        end = time.monotonic() + limit
        own = delivery.backend_for(self.settings).flush(limit)
        return delivery.flush(max(0.0, end - time.monotonic())) and own


def _cookie_header(headers: Any) -> str:
    """The Cookie header as text; several (HTTP/2 may split it) joined with ``; ``."""
    values = [value.decode("latin-1") for name, value in headers if name == b"cookie"]
    return values[0] if len(values) == 1 else "; ".join(values)


def _lazy_headers(headers: Any) -> Callable[[str], str | None]:
    """Header lookup for a re-issue check: the cookies now, the other headers' table only
    if the rules ask for one of them (most re-issues read none)."""
    cookie = None
    for raw_name, raw_value in headers:
        if raw_name == b"cookie":
            value = raw_value.decode("latin-1")
            cookie = value if cookie is None else f"{cookie}; {value}"  # HTTP/2 splits
    table: dict[str, str] | None = None

    def header(name: str) -> str | None:
        nonlocal table
        if name == "cookie":
            return cookie
        if table is None:
            table = _header_table(headers)
        return table.get(name)

    return header


def _header_table(headers: Any) -> dict[str, str]:
    """The first value of each header the visit rules look at, by lower-case name."""
    table: dict[str, str] = {}
    wanted = _HEADERS.get
    for raw_name, raw_value in headers:
        name = wanted(raw_name)
        if name is not None and name not in table:
            table[name] = raw_value.decode("latin-1")
    return table


def _expose(scope: Scope, visit: Visit | None) -> None:
    scope[SCOPE_KEY] = visit
    state = scope.get("state")
    if state is None:
        scope["state"] = {STATE_KEY: visit}
    elif type(state) is dict or isinstance(state, MutableMapping):
        state[STATE_KEY] = visit


def _with_cookies(send: Send, cookies: tuple[str, ...]) -> Send:
    extra = [(b"set-cookie", value.encode("latin-1")) for value in cookies]

    async def send_(message: Message) -> None:
        if message["type"] == "http.response.start":
            # A new message and header list: the app may reuse its own on every request.
            headers = message.get("headers")
            message = {**message, "headers": [*headers, *extra] if headers else list(extra)}
        await send(message)

    return send_

