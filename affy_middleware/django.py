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
customer's ``email``/``name`` from ``request.POST`` when the view did not call ``identify()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._settings import ENV_VARS, Settings
from .attribution.decide import ConsentHook
from .middleware.asgi import AffyASGIMiddleware, ASGIApp
from .middleware.wsgi import AffyMiddleware

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = ["affy_settings", "wrap_wsgi", "wrap_asgi"]


def affy_settings(**overrides: Any) -> Settings:
    """``Settings`` from Django's ``settings.AFFY_*``, else the environment, then
    ``overrides``. Raises ``AffyConfigError`` for a malformed value (at start-up)."""
    from django.conf import settings as django_settings

    config = {
        name: getattr(django_settings, name)
        for name in ENV_VARS
        if getattr(django_settings, name, None) is not None
    }
    return Settings.from_mapping(config, **overrides)


def wrap_wsgi(
    application: WSGIApplication,
    *,
    settings: Settings | None = None,
    consent: ConsentHook | None = None,
    **overrides: Any,
) -> AffyMiddleware:
    """``AffyMiddleware`` around Django's WSGI application (call after
    ``get_wsgi_application()``, which sets Django up). ``consent`` gets the environ."""
    if settings is None:
        settings = affy_settings(**overrides)
    elif overrides:
        settings = settings.replace(**overrides)
    return AffyMiddleware(application, settings=settings, consent=consent)


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
    if settings is None:
        settings = affy_settings(**overrides)
    elif overrides:
        settings = settings.replace(**overrides)
    return AffyASGIMiddleware(
        application, settings=settings, consent=consent, flush_on_shutdown=flush_on_shutdown
    )
