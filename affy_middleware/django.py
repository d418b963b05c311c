"""Django: wrap the WSGI or the ASGI application, with settings from Django's settings.

``wsgi.py`` (gunicorn, uWSGI, mod_wsgi)::

    from django.core.wsgi import get_wsgi_application
    from affy_middleware.django import wrap_wsgi

    application = wrap_wsgi(get_wsgi_application())

``asgi.py`` (uvicorn, daphne, hypercorn)::

    from django.core.asgi import get_asgi_application
    from affy_middleware.django import wrap_asgi

    application = wrap_asgi(get_asgi_application())

Every option is read from ``settings.AFFY_*`` (``AFFY_CLIENT_ID``, ``AFFY_API_KEY``, ...)
and falls back to the environment variable of the same name; keyword arguments win over
both. The decorators work on function and class-based views, sync and async, and read the
customer's ``email``/``name`` from ``request.POST`` (or Django REST framework's
``request.data``) when the view did not call ``identify()``: this module registers that
field source, and is imported for you the first time it is needed in a Django process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._resolution import resolve
from ._settings import ENV_VARS, Settings
from .attribution.decide import ConsentHook
from .attribution.visit import Visit
from .conversions import register_field_source
from .middleware.asgi import AffyASGIMiddleware, ASGIApp
from .middleware.wsgi import AffyMiddleware

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = ["affy_settings", "wrap_wsgi", "wrap_asgi"]


def _django_config() -> dict[str, Any]:
    from django.conf import settings as django_settings

    return {
        name: getattr(django_settings, name)
        for name in ENV_VARS
        if getattr(django_settings, name, None) is not None
    }


def affy_settings(**overrides: Any) -> Settings:
    """``Settings`` from Django's ``settings.AFFY_*``, else the environment, then
    ``overrides``. Raises ``AffyConfigError`` for a malformed value (at start-up)."""
    return _resolved(None, overrides)


def _resolved(settings: Settings | None, overrides: Mapping[str, Any]) -> Settings:
    # The one resolution: Django's settings are read only when no Settings were given.
    config = _django_config() if settings is None else None
    return resolve(settings, overrides, framework_config=config)


def wrap_wsgi(
    application: WSGIApplication,
    *,
    settings: Settings | None = None,
    consent: ConsentHook | None = None,
    **overrides: Any,
) -> AffyMiddleware:
    """``AffyMiddleware`` around Django's WSGI application (call after
    ``get_wsgi_application()``, which sets Django up). ``consent`` gets the environ."""
    return AffyMiddleware(application, settings=_resolved(settings, overrides), consent=consent)


def wrap_asgi(
    application: ASGIApp,
    *,
    settings: Settings | None = None,
    consent: ConsentHook | None = None,
    flush_on_shutdown: bool = True,
    **overrides: Any,
) -> AffyASGIMiddleware:
    """``AffyASGIMiddleware`` around Django's ASGI application (call after
    ``get_asgi_application()``). ``consent`` gets the scope. Django does not speak the
    lifespan protocol; the middleware answers it, so the queue is flushed at shutdown."""
    return AffyASGIMiddleware(
        application,
        settings=_resolved(settings, overrides),
        consent=consent,
        flush_on_shutdown=flush_on_shutdown,
    )


def _django_fields(
    args: tuple[Any, ...], kwargs: Mapping[str, Any], visit: Visit | None
) -> Mapping[str, Any] | None:
    # Django views (and DRF) take the request first; bound methods take it second.
    for candidate in args[:2]:
        post = getattr(candidate, "POST", None)
        if post is not None and hasattr(candidate, "META"):
            data = getattr(candidate, "data", None)  # DRF's parsed body, if any
            if isinstance(data, Mapping) and data:
                return data
            return post  # type: ignore[no-any-return]
    return None


register_field_source(_django_fields)
