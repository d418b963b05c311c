"""Tiny Shop on Django: the same journey as the Flask and FastAPI shops.

A minimal project (no database: the customer lives in a signed session cookie) whose
settings come from the environment (``settings.py``). Both deployment styles:

- WSGI: ``gunicorn examples.django_shop.wsgi:application`` (``AffyMiddleware``)
- ASGI: ``uvicorn examples.django_shop.asgi:application`` (``AffyASGIMiddleware``)

``python -m examples.django_shop [--asgi] [--sandbox]`` serves it for a quick look.
``create_wsgi_app()`` / ``create_asgi_app()`` build the wrapped applications.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["SETTINGS_MODULE", "create_wsgi_app", "create_asgi_app"]

SETTINGS_MODULE = "examples.django_shop.settings"


def create_wsgi_app(**affy_options: Any) -> Any:
    """Django's WSGI application wrapped in ``AffyMiddleware``."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    from django.core.wsgi import get_wsgi_application

    from affy_middleware.django import wrap_wsgi

    return wrap_wsgi(get_wsgi_application(), **affy_options)


def create_asgi_app(**affy_options: Any) -> Any:
    """Django's ASGI application wrapped in ``AffyASGIMiddleware``."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    from django.core.asgi import get_asgi_application

    from affy_middleware.django import wrap_asgi

    return wrap_asgi(get_asgi_application(), **affy_options)
