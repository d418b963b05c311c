"""The ASGI middleware: ``app = AffyASGIMiddleware(app)`` or ``app.add_middleware(...)``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, MutableMapping
from typing import Any, Final

from .. import delivery
from .._errors import AffyConfigError
from .._logging import log_failure
from .._resolution import resolve
from .._settings import Settings
from ..attribution.context import acall_with, visit_now
from ..attribution.decide import ConsentHook
from ..attribution.request import ASGIRequest
from ..attribution.visit import Visit
from .lifespan import Refusal, run_lifespan
from .pipeline import NOTHING, VISIT_KEY, Pipeline, asgi_cookie
from .types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["AffyASGIMiddleware", "SCOPE_KEY", "STATE_KEY", "visit_of", "ASGIApp"]

from .._logging import log_fields

logger = logging.getLogger("affy_middleware")

#: Where the request's ``Visit`` (or None) is put in the scope.
SCOPE_KEY: Final = VISIT_KEY
#: Key in ``scope["state"]``: Starlette/FastAPI read it as ``request.state.affy_visit``.
STATE_KEY: Final = "affy_visit"


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
        try:
            settings = resolve(settings, setting_overrides)
        except AffyConfigError as error:
            if not _in_event_loop():
                raise
            # Built inside a running server: Starlette's add_middleware builds its stack on
            # the first call, the lifespan startup, where uvicorn takes any exception for
            # "lifespan unsupported" and serves anyway. Fail that startup instead.
            logger.error(
                "affy_middleware: %s; the application refuses to start",
                error,
                extra=log_fields(reason="config_error"),
            )
            app, settings = Refusal(error), Settings(enabled=False)
        self.app = app
        self.settings = settings
        self.flush_on_shutdown = flush_on_shutdown
        # Disabled outright (AFFY_ENABLED=0): a pure pass-through, not even cookies are read.
        self._pipeline = Pipeline(settings, consent) if settings.enabled else None

    def __repr__(self) -> str:
        return f"AffyASGIMiddleware({self.app!r}, settings={self.settings!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and self.flush_on_shutdown:
                return await run_lifespan(self.app, scope, receive, send, self.shutdown)
            return await self.app(scope, receive, send)
        pipeline = self._pipeline
        if pipeline is None or SCOPE_KEY in scope:
            # Wrapped twice: the outer middleware already tracked this request.
            return await self.app(scope, receive, send)
        method = scope.get("method") or "GET"
        query = scope.get("query_string") or b""
        decision = pipeline.decide(scope, method, query, asgi_cookie(scope), ASGIRequest)
        if decision is NOTHING and visit_now() is None:
            # No visit, no cookie, no click, none current: the app as it is, without two
            # coroutines around it (0.3 µs of a 1.1 µs pass-through, docs/benchmarks.md).
            scope[SCOPE_KEY] = None
            _set_state(scope, None)
            return await self.app(scope, receive, send)
        visit = await pipeline.aenter(scope, decision)
        _set_state(scope, visit)
        cookies = decision[1]
        if cookies:
            send = _with_cookies(send, cookies)
        await acall_with(visit, self.app, scope, receive, send)

    # -- lifespan -----------------------------------------------------------------------
    async def flush(self, timeout: float | None = None) -> bool:
        """Deliver what is queued, in a worker thread, for at most ``timeout`` seconds in
        all (default ``flush_timeout``): this middleware's events first, then those of any
        other settings in the process. True if everything was delivered. Never raises."""
        limit = self.settings.flush_timeout if timeout is None else timeout
        try:
            return await asyncio.to_thread(self._flush_all, limit)
        except Exception:
            log_failure("flushing the event queue")
            return False

    def _flush_all(self, limit: float) -> bool:
        end = time.monotonic() + limit
        own = delivery.backend_for(self.settings).flush(limit)
        return delivery.flush(max(0.0, end - time.monotonic())) and own

    async def shutdown(self, timeout: float | None = None) -> bool:
        """At lifespan shutdown: :meth:`flush`, then stop the delivery threads, give the
        outbox rows not finished back to other processes and count (and say) what is
        lost, all within ``timeout`` (default ``flush_timeout``). A server's worker may
        exit without running exit handlers (uvicorn's ``--workers`` do): this is its exit.
        A later event starts delivery again. Never raises."""
        limit = self.settings.flush_timeout if timeout is None else timeout
        try:
            return await asyncio.to_thread(self._shutdown_all, limit)
        except Exception:
            log_failure("shutting delivery down")
            return False

    def _shutdown_all(self, limit: float) -> bool:
        end = time.monotonic() + limit
        flushed = self._flush_all(limit)
        delivery.shutdown(max(0.0, end - time.monotonic()))
        return flushed


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _set_state(scope: Scope, visit: Visit | None) -> None:
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
