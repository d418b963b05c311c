"""The ASGI middleware: ``app = AffyASGIMiddleware(app)`` or ``app.add_middleware(...)``."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping, MutableMapping
from typing import Any, Final

from .. import delivery
from .._errors import AffyConfigError
from .._logging import log_failure
from .._resolution import resolve
from .._settings import Settings
from ..attribution.context import _current
from ..attribution.decide import REISSUE, ConsentHook
from ..attribution.request import ASGIRequest
from ..attribution.visit import Visit
from .lifespan import Refusal, run_lifespan
from .pipeline import VISIT_KEY, Pipeline
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
        if self._pipeline is not None:
            click, session = self._pipeline.needles
            # One substring test tells "no cookie of ours" when both names share a prefix
            # ("affy_"); a false alarm only costs a closer look at the cookie header.
            shared = os.path.commonprefix([click, session])
            self._needle = shared if len(shared) >= 4 else click
            self._other_needle: str | None = None if len(shared) >= 4 else session

    def __repr__(self) -> str:
        return f"AffyASGIMiddleware({self.app!r}, settings={self.settings!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and self.flush_on_shutdown:
                return await run_lifespan(self.app, scope, receive, send, self.flush)
            return await self.app(scope, receive, send)
        pipeline = self._pipeline
        if pipeline is None or SCOPE_KEY in scope:
            # Wrapped twice: the outer middleware already tracked this request.
            return await self.app(scope, receive, send)
        decision = None
        try:  # free when nothing raises (3.11+); a server's odd scope must not hurt
            attribution = pipeline.attribution
            query = scope.get("query_string")
            if (
                query
                and attribution.writes
                and scope["method"] == "GET"
                and attribution.might_land(query)
            ):
                # Maybe an affiliate landing: the request's headers are read in one pass.
                decision = attribution.decide(ASGIRequest(scope, query), may_land=True)
            else:
                # No cookie of ours, no visit. Header names are lower-case in ASGI
                # (Starlette's Headers relies on that too); HTTP/2 may split the cookies.
                cookie = None
                for name, value in scope["headers"]:
                    if name == b"cookie":
                        cookie = value if cookie is None else b"%s; %s" % (cookie, value)
                if cookie is not None:
                    # Searched as text: `bytes in bytes` first tries the needle as an int.
                    text = cookie.decode("latin-1")
                    other = self._other_needle
                    if self._needle in text or (other and other in text):
                        # No landing: the cookies decide, read without a request view,
                        # unless a click cookie may need re-issuing (decide() reads the
                        # other headers then).
                        found = attribution.returning(scope["method"], text, scope)
                        if found is REISSUE:
                            request = ASGIRequest(scope, query or b"", text)
                            decision = attribution.decide(request)
                        elif found is not None:
                            decision = found, (), None  # what decide() says
        except Exception:
            log_failure("deciding the visit")
        if decision is None:
            scope[SCOPE_KEY] = None
            _set_state(scope, None)
            # Each request runs in its own task, whose context holds no visit: unlike
            # WSGI threads, nothing is left over from an earlier request to reset.
            return await self.app(scope, receive, send)
        visit, cookies, event = decision
        if event is not None and not pipeline.offer(event):
            # Sync delivery sends the click inline: not on the event loop.
            from anyio import to_thread

            await to_thread.run_sync(pipeline.submit, event)
        if cookies:
            send = _with_cookies(send, cookies)
        token = pipeline.enter(scope, visit, None)
        _set_state(scope, visit)
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)

    # -- lifespan -----------------------------------------------------------------------
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
