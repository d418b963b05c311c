"""The WSGI middleware: ``app.wsgi_app = AffyMiddleware(app.wsgi_app)``."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from . import delivery
from ._resolution import resolve
from ._settings import Settings
from ._visit import REISSUE, Attribution, ConsentHook, Decision, _current

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["AffyMiddleware", "ENVIRON_KEY"]

logger = logging.getLogger("affy_middleware")

#: Where the request's ``Visit`` (or None) is put in the environ.
ENVIRON_KEY = "affy.visit"
#: Seconds between two logged tracking failures (the rest are counted, not logged).
LOG_INTERVAL = 60.0

#: Lower-case header name -> environ key, for the headers the visit rules look at.
_ENVIRON_HEADERS = {
    "cookie": "HTTP_COOKIE",
    "user-agent": "HTTP_USER_AGENT",
    "referer": "HTTP_REFERER",
    "sec-purpose": "HTTP_SEC_PURPOSE",
    "purpose": "HTTP_PURPOSE",
    "x-purpose": "HTTP_X_PURPOSE",
    "x-moz": "HTTP_X_MOZ",
    "sec-fetch-mode": "HTTP_SEC_FETCH_MODE",
}


class _FailureLog:
    """Logs our own failures at most once per interval, with the traceback."""

    def __init__(self) -> None:
        self.last = 0.0
        self.suppressed = 0

    def __call__(self, what: str) -> None:
        now = time.monotonic()
        if now - self.last < LOG_INTERVAL and self.last:
            self.suppressed += 1
            return
        self.last = now
        logger.error(
            "affy_middleware: %s failed; the request continues untracked "
            "(%d similar failures not logged)",
            what,
            self.suppressed,
            exc_info=True,
        )
        self.suppressed = 0


log_failure = _FailureLog()


def _query_bytes(query: str) -> bytes:
    # PEP 3333: the raw bytes arrive decoded as latin-1; a few servers decode UTF-8 instead.
    try:
        return query.encode("latin-1")
    except UnicodeEncodeError:
        return query.encode("utf-8", "surrogateescape")


def _host(environ: WSGIEnvironment) -> str:
    host = environ.get("HTTP_HOST")
    if host:
        return str(host)
    return f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}"


class AffyMiddleware:
    """WSGI middleware that recognises affiliate landings and keeps their attribution.

    ::

        app.wsgi_app = AffyMiddleware(app.wsgi_app)            # Flask
        application = AffyMiddleware(get_wsgi_application())   # Django, any WSGI app
        application = AffyMiddleware(app, client_id=42, consent=lambda environ: ...)

    ``settings`` defaults to ``Settings.from_env(**setting_overrides)``. ``consent`` is
    called with the environ before any cookie is written; False holds cookies and the click
    back. The host app's status, headers, body, exceptions and iterable pass through
    untouched; the only change is appended ``Set-Cookie`` headers. The visit is available as
    ``current_visit()`` during the app call and as ``environ["affy.visit"]``.

    Tracking off for lack of a client id (or ``delivery="off"``): valid cookies are still
    read into the visit, but no cookie is written and nothing is reported. ``enabled=False``
    makes the middleware a pure pass-through.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        settings: Settings | None = None,
        consent: ConsentHook | None = None,
        **setting_overrides: Any,
    ) -> None:
        settings = resolve(settings, setting_overrides)
        self.app = app
        self.settings = settings
        # Disabled outright (AFFY_ENABLED=0): a pure pass-through, not even cookies are read.
        self._attribution = Attribution(settings, consent) if settings.enabled else None
        # Cheap substring tests that tell "no cookie of ours" without parsing the header.
        self._click_needle = settings.click_cookie + "="
        self._session_needle = settings.session_cookie + "="

    def __repr__(self) -> str:
        return f"AffyMiddleware({self.app!r}, settings={self.settings!r})"

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        attribution = self._attribution
        if attribution is None or ENVIRON_KEY in environ:
            # Wrapped twice: the outer middleware already tracked this request.
            return self.app(environ, start_response)
        visit = decision = None
        try:  # free when nothing raises (3.11+); a server's odd environ must not hurt
            query = environ.get("QUERY_STRING")
            cookie = environ.get("HTTP_COOKIE")
            if (
                query
                and attribution.writes
                and attribution.might_land(query)
                and (environ.get("REQUEST_METHOD") or "GET") == "GET"
            ):
                decision = self._decide(environ, query)  # maybe an affiliate landing
            elif cookie and (self._click_needle in cookie or self._session_needle in cookie):
                # A returning visitor: the visit reads the rest of its cookies when asked.
                visit = attribution.returning(
                    environ.get("REQUEST_METHOD") or "GET", cookie, environ
                )
                if visit is REISSUE:  # a click cookie AFFY's snippet wrote, maybe
                    visit = None
                    decision = self._decide(environ, None)
        except Exception:
            log_failure("deciding the visit")
        if decision is not None:
            visit, cookies, event = decision
            if event is not None:
                try:
                    delivery.backend_for(self.settings).submit(event)
                except Exception:
                    log_failure("enqueueing the click")
            if cookies:
                start_response = self._with_cookies(start_response, cookies)
        environ[ENVIRON_KEY] = visit
        if visit is None and _current.get() is None:
            # Every tracked request resets the contextvar when it ends, so there is no
            # stale visit to hide here (the common case costs one get()). A sub-request
            # made from inside a tracked one gets None set below.
            return self.app(environ, start_response)
        token = _current.set(visit)
        try:
            return self.app(environ, start_response)
        finally:
            _current.reset(token)

    def _decide(self, environ: WSGIEnvironment, query: str | None) -> Decision | None:
        """The full decision: a GET whose query may land (``query``), or a re-issue check."""
        attribution = self._attribution
        assert attribution is not None
        get = environ.get

        def header(name: str) -> str | None:
            value = get(_ENVIRON_HEADERS[name])
            return value if isinstance(value, str) else None

        method = get("REQUEST_METHOD") or "GET"
        scheme = get("wsgi.url_scheme") or "http"
        if query is None:
            return attribution.decide_cookies(method, scheme, header, environ)
        try:  # _query_bytes(query), inlined
            raw_query = query.encode("latin-1")
        except UnicodeEncodeError:
            raw_query = _query_bytes(query)
        return attribution.decide_query(
            method,
            scheme,
            _host(environ),
            get("SCRIPT_NAME", "") + get("PATH_INFO", ""),
            raw_query,
            header,
            environ,
        )

    @staticmethod
    def _with_cookies(start_response: StartResponse, cookies: tuple[str, ...]) -> StartResponse:
        extra = [("Set-Cookie", value) for value in cookies]

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            # A new list: the app may pass the same (module-level) list on every request.
            # Cookies are added on every call, including the exc_info error-page call.
            if exc_info is None:
                return start_response(status, [*headers, *extra])
            return start_response(status, [*headers, *extra], exc_info)

        return start
