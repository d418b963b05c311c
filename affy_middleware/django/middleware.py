"""``MIDDLEWARE = [..., "affy_middleware.django.AffyMiddleware", ...]``.

The same attribution as the WSGI and ASGI middlewares (one ``Pipeline``, one decision), on
Django's request and response: ``request.is_secure()`` decides ``Secure``,
``request.affy_visit`` and ``current_visit()`` hold the visit, and the cookies are added to
``response.cookies`` next to the app's own. Sync and async capable: under ASGI with async
views no thread is involved.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http.cookies import Morsel
from typing import TYPE_CHECKING, Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async

from .._logging import log_failure
from ..attribution.context import _current
from ..attribution.decide import REISSUE, ConsentHook, Decision
from ..middleware.pipeline import VISIT_KEY, Pipeline
from . import conf
from .request import DjangoRequest

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponseBase

__all__ = ["AffyMiddleware"]

GetResponse = Callable[["HttpRequest"], Any]


class AffyMiddleware:
    """Recognises affiliate landings and keeps their attribution, inside Django.

    Settings: ``settings.AFFY_*`` (else the ``AFFY_*`` environment), read once; a
    malformed one raises ``AffyConfigError`` when the server loads its middleware. A
    consent hook: subclass, set ``consent = staticmethod(hook)`` (``hook(request) ->
    bool``), and list the subclass instead. Behind ``wrap_wsgi``/``wrap_asgi`` too, it
    passes the request through: wrapping twice does not track twice.
    """

    sync_capable = True
    async_capable = True
    #: ``hook(request) -> bool``; False holds cookies and the click back.
    consent: ConsentHook | None = None

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)
        conf.watch()
        self.settings = settings = conf.configured()
        self._pipeline = Pipeline(settings, self.consent) if settings.enabled else None

    def __repr__(self) -> str:
        return f"AffyMiddleware(settings={self.settings!r})"

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        if self._pipeline is None or _outer(request):
            request.affy_visit = _outer_visit(request)
            return self.get_response(request)
        decision = self._decide(request)
        if decision is None:
            return self._untracked(request)
        pipeline, (visit, cookies, event) = decision
        token = pipeline.enter(request.META, visit, event)
        request.affy_visit = visit
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)
        return _with_cookies(response, cookies)

    async def __acall__(self, request: HttpRequest) -> Any:
        get_response: Callable[[HttpRequest], Awaitable[Any]] = self.get_response
        if self._pipeline is None or _outer(request):
            request.affy_visit = _outer_visit(request)
            return await get_response(request)
        decision = self._decide(request)
        if decision is None:
            request.affy_visit = None
            if _current.get() is None:
                return await get_response(request)
            token = _current.set(None)
            try:
                return await get_response(request)
            finally:
                _current.reset(token)
        pipeline, (visit, cookies, event) = decision
        if event is not None and pipeline.blocks():
            # Sync delivery sends the click inline: not on the event loop.
            await sync_to_async(pipeline.submit, thread_sensitive=False)(event)
            event = None
        token = pipeline.enter(request.META, visit, event)
        request.affy_visit = visit
        try:
            response = await get_response(request)
        finally:
            _current.reset(token)
        return _with_cookies(response, cookies)

    def _decide(self, request: HttpRequest) -> tuple[Pipeline, Decision] | None:
        pipeline = self._pipeline
        assert pipeline is not None
        try:
            meta = request.META
            query = meta.get("QUERY_STRING") or ""
            cookie = meta.get("HTTP_COOKIE")
            attribution = pipeline.attribution
            click_needle, session_needle = pipeline.needles
            # Most requests carry neither a query that may land nor a cookie of ours.
            if query and attribution.writes and attribution.might_land(query):
                request_view = DjangoRequest(request, query, cookie)
                decision = attribution.decide(request_view, may_land=True)  # asked above
            elif cookie and (click_needle in cookie or session_needle in cookie):
                # No landing: the cookies decide, read without a request view, unless a
                # click cookie may need re-issuing (then decide() looks at the headers).
                found = attribution.returning(request.method or "GET", cookie, request)
                if found is not REISSUE:
                    return None if found is None else (pipeline, (found, (), None))
                decision = attribution.decide(DjangoRequest(request, query, cookie))
            else:
                return None
            return None if decision is None else (pipeline, decision)
        except Exception:
            log_failure("deciding the visit")
        return None

    def _untracked(self, request: HttpRequest) -> Any:
        request.affy_visit = None
        if _current.get() is None:
            return self.get_response(request)
        # A request made from inside a tracked one (the test client in a view): no visit.
        token = _current.set(None)
        try:
            return self.get_response(request)
        finally:
            _current.reset(token)


def _outer(request: HttpRequest) -> bool:
    """Whether ``wrap_wsgi``/``wrap_asgi`` already tracked this request."""
    scope = getattr(request, "scope", None)
    return VISIT_KEY in request.META or (isinstance(scope, dict) and VISIT_KEY in scope)


def _outer_visit(request: HttpRequest) -> Any:
    scope = getattr(request, "scope", None)
    if isinstance(scope, dict) and VISIT_KEY in scope:
        return scope[VISIT_KEY]
    return request.META.get(VISIT_KEY)


def _with_cookies(response: HttpResponseBase, cookies: tuple[str, ...]) -> HttpResponseBase:
    """Our ``Set-Cookie`` values as morsels of ``response.cookies``, next to the app's own.
    A cookie of the same name the app set itself (say, cleared at logout) wins."""
    try:
        jar = response.cookies
        for header in cookies:
            name, _, rest = header.partition("=")
            if name in jar:
                continue
            value, *attributes = rest.split("; ")
            morsel: Morsel[str] = Morsel()
            morsel.set(name, value, value)  # tokens already: nothing to quote
            for attribute in attributes:
                key, _, text = attribute.partition("=")
                morsel[key.lower()] = text or True
            jar[name] = morsel
    except Exception:
        log_failure("adding the cookies")
    return response
