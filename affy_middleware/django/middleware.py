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

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from .._logging import log_failure
from ..attribution.context import acall_with, call_with
from ..attribution.decide import ConsentHook
from ..middleware.pipeline import NOTHING, VISIT_KEY, Outcome, Pipeline, asgi_cookie
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
        pipeline = self._pipeline
        if pipeline is None or _outer(request):
            request.affy_visit = _outer_visit(request)
            return self.get_response(request)
        decision = self._decide(pipeline, request)
        request.affy_visit = visit = pipeline.enter(request.META, decision)
        response = call_with(visit, self.get_response, request)
        return _with_cookies(response, decision[1])

    async def __acall__(self, request: HttpRequest) -> Any:
        get_response: Callable[[HttpRequest], Awaitable[Any]] = self.get_response
        pipeline = self._pipeline
        if pipeline is None or _outer(request):
            request.affy_visit = _outer_visit(request)
            return await get_response(request)
        decision = self._decide(pipeline, request)
        request.affy_visit = visit = await pipeline.aenter(request.META, decision)
        response = await acall_with(visit, get_response, request)
        return _with_cookies(response, decision[1])

    @staticmethod
    def _decide(pipeline: Pipeline, request: HttpRequest) -> Outcome:
        try:
            meta = request.META
            method = request.method or "GET"
            query, cookie = meta.get("QUERY_STRING") or "", meta.get("HTTP_COOKIE")
            scope = getattr(request, "scope", None)
            if cookie and scope is not None and "," in cookie:
                cookie = asgi_cookie(scope)  # several headers: Django joined them with ","
        except Exception:  # a request Django itself could not read: no visit
            log_failure("deciding the visit")
            return NOTHING
        return pipeline.decide(request, method, query, cookie, DjangoRequest)


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
    if not cookies:
        return response
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
