"""Django: a middleware class, an app with checks and commands, conversions on commit.

``settings.py``::

    INSTALLED_APPS = [..., "affy_middleware.django"]
    MIDDLEWARE = [
        "django.middleware.security.SecurityMiddleware",
        ...,
        "affy_middleware.django.AffyMiddleware",
    ]
    AFFY_CLIENT_ID = 42          # or the AFFY_CLIENT_ID environment variable

Every option is read from ``settings.AFFY_*`` and falls back to the environment variable
of the same name, once per process (the app does it at start-up, so ``report_*`` in a
management command or a Celery task uses them too). Inside an atomic block
(``ATOMIC_REQUESTS``, ``transaction.atomic()``) the decorators and ``report_*`` hand their
event over on commit: a rolled-back signup reports nothing.

Wrapping the application from outside Django still works (``wrap_wsgi(
get_wsgi_application())`` in ``wsgi.py``, ``wrap_asgi(...)`` in ``asgi.py``), with the same
settings; a request tracked by the wrapper is not tracked again by the middleware class.

The decorators read the customer's ``email``/``name`` from ``request.POST`` (or Django
REST framework's ``request.data``) when the view did not call ``identify()``: this module
registers that field source, and is imported for you the first time it is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._settings import Settings
from ..attribution.decide import ConsentHook
from ..attribution.visit import Visit
from ..conversions import install_hand_over, register_field_source
from ..middleware.asgi import AffyASGIMiddleware, ASGIApp
from ..middleware.wsgi import AffyMiddleware as AffyWSGIMiddleware
from .conf import affy_settings, resolved
from .middleware import AffyMiddleware
from .transactions import on_commit_hand_over

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = ["AffyMiddleware", "affy_settings", "wrap_wsgi", "wrap_asgi"]


def wrap_wsgi(
    application: WSGIApplication,
    *,
    settings: Settings | None = None,
    consent: ConsentHook | None = None,
    **overrides: Any,
) -> AffyWSGIMiddleware:
    """The WSGI ``AffyMiddleware`` around Django's WSGI application (call after
    ``get_wsgi_application()``, which sets Django up). ``consent`` gets the environ."""
    return AffyWSGIMiddleware(application, settings=resolved(settings, overrides), consent=consent)


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
        settings=resolved(settings, overrides),
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
install_hand_over(on_commit_hand_over)
