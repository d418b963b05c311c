"""The WSGI middleware: ``app.wsgi_app = AffyMiddleware(app.wsgi_app)``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .._logging import log_failure
from .._resolution import resolve
from .._settings import Settings
from ..attribution.context import _current
from ..attribution.decide import REISSUE, ConsentHook
from ..attribution.request import WSGIRequest
from .pipeline import VISIT_KEY, Pipeline

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["AffyMiddleware", "ENVIRON_KEY"]

#: Where the request's ``Visit`` (or None) is put in the environ.
ENVIRON_KEY = VISIT_KEY


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
        self._pipeline = Pipeline(settings, consent) if settings.enabled else None
        if self._pipeline is not None:
            attribution = self._pipeline.attribution
            self._writes = attribution.writes
            self._might_land = attribution.might_land
            self._returning = attribution.returning
            self._click_needle, self._session_needle = self._pipeline.needles

    def __repr__(self) -> str:
        return f"AffyMiddleware({self.app!r}, settings={self.settings!r})"

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        pipeline = self._pipeline
        if pipeline is None or ENVIRON_KEY in environ:
            # Wrapped twice: the outer middleware already tracked this request.
            return self.app(environ, start_response)
        visit = decision = None
        try:  # free when nothing raises (3.11+); a server's odd environ must not hurt
            query = environ.get("QUERY_STRING")
            cookie = environ.get("HTTP_COOKIE")
            # Most requests carry neither a query that may land nor a cookie of ours.
            if query and self._writes and self._might_land(query):
                request = WSGIRequest(environ, query, cookie)
                decision = pipeline.attribution.decide(request, may_land=True)
            elif cookie and (self._click_needle in cookie or self._session_needle in cookie):
                # No landing: the cookies decide, read without a request view, unless a
                # click cookie may need re-issuing (then decide() looks at the headers).
                found = self._returning(environ.get("REQUEST_METHOD") or "GET", cookie, environ)
                if found is REISSUE:
                    request = WSGIRequest(environ, query or "", cookie)
                    decision = pipeline.attribution.decide(request)
                else:
                    visit = found  # decide() would say (visit, (), None)
        except Exception:
            log_failure("deciding the visit")
        if decision is not None:
            visit, cookies, event = decision
            if cookies:
                start_response = _with_cookies(start_response, cookies)
            token = pipeline.enter(environ, visit, event)
        else:
            # No cookie to set, no click: the visit (or None) is all there is to apply.
            environ[ENVIRON_KEY] = visit
            if visit is None and _current.get() is None:
                # Every tracked request resets the contextvar when it ends, so there is no
                # stale visit to hide here. A sub-request made from inside a tracked one
                # gets None set below.
                return self.app(environ, start_response)
            token = _current.set(visit)
        try:
            return self.app(environ, start_response)
        finally:
            _current.reset(token)


def _with_cookies(start_response: StartResponse, cookies: tuple[str, ...]) -> StartResponse:
    extra = [("Set-Cookie", value) for value in cookies]

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        # A new list: the app may pass the same (module-level) list on every request.
        # Cookies are added on every call, including the exc_info error-page call.
        if exc_info is None:
            return start_response(status, [*headers, *extra])
        return start_response(status, [*headers, *extra], exc_info)

    return start
