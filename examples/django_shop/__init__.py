"""Tiny Shop on Django: the same journey as the Flask and FastAPI shops.

A minimal project (no database: the customer lives in a signed session cookie) set up the
Django way: ``"affy_middleware.django"`` in ``INSTALLED_APPS`` (settings read once, system
checks, ``manage.py affy_doctor``) and ``AffyMiddleware`` in ``MIDDLEWARE``; the AFFY
options come from ``settings.py``, which falls back to the environment. Both deployments
use Django's own entry points:

- WSGI: ``gunicorn examples.django_shop.wsgi:application``
- ASGI: ``uvicorn examples.django_shop.asgi:application``

``python -m examples.django_shop [--asgi] [--sandbox]`` serves it for a quick look.
``create_wsgi_app()`` / ``create_asgi_app()`` return Django's applications.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["SETTINGS_MODULE", "create_wsgi_app", "create_asgi_app"]

SETTINGS_MODULE = "examples.django_shop.settings"


def create_wsgi_app() -> Any:
    """Django's WSGI application (``AffyMiddleware`` is in ``MIDDLEWARE``)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


def create_asgi_app() -> Any:
    """Django's ASGI application (``AffyMiddleware`` is in ``MIDDLEWARE``)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    from django.core.asgi import get_asgi_application

    return get_asgi_application()
