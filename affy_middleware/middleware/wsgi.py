"""The WSGI middleware: ``app.wsgi_app = AffyMiddleware(app.wsgi_app)``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .._resolution import resolve
from .._settings import Settings
from ..attribution.context import call_with, visit_now
from ..attribution.decide import ConsentHook
from ..attribution.request import WSGIRequest
from .pipeline import NOTHING, VISIT_KEY, Pipeline

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

    def __repr__(self) -> str:
        return f"AffyMiddleware({self.app!r}, settings={self.settings!r})"

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        pipeline = self._pipeline
        if pipeline is None or ENVIRON_KEY in environ:
            # Wrapped twice: the outer middleware already tracked this request.
            return self.app(environ, start_response)
        get = environ.get
        query = get("QUERY_STRING") or ""
        cookie = get("HTTP_COOKIE")
        click, session = pipeline.needles
        if not query and not (type(cookie) is str and (click in cookie or session in cookie)):
            # Nothing to decide: decide()'s own first test, made here to skip its call and
            # call_with's (0.15 µs of a 0.4 µs pass-through, docs/benchmarks.md). A cookie
            # that is not a str (an odd server) carries no visit either.
            decision = NOTHING
        else:
            decision = pipeline.decide(environ, get("REQUEST_METHOD"), query, cookie, WSGIRequest)
        if decision is NOTHING:  # no visit, no cookie to set, no click
            environ[VISIT_KEY] = None
            if visit_now() is None:
                return self.app(environ, start_response)
            return call_with(None, self.app, environ, start_response)
        visit = pipeline.enter(environ, decision)
        cookies = decision[1]
        if cookies:
            start_response = _with_cookies(start_response, cookies)
        return call_with(visit, self.app, environ, start_response)


def _with_cookies(start_response: StartResponse, cookies: tuple[str, ...]) -> StartResponse:
    extra = [("Set-Cookie", value) for value in cookies]

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        # A new list: the app may pass the same (module-level) list on every request.
        # Cookies are added on every call, including the exc_info error-page call.
        if exc_info is None:
            return start_response(status, [*headers, *extra])
        return start_response(status, [*headers, *extra], exc_info)

    return start
