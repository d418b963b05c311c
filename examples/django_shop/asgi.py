"""ASGI entry point: ``uvicorn examples.django_shop.asgi:application``.

Django's application, wrapped by ``AffyASGIMiddleware`` (settings from Django settings or
env). The middleware answers the lifespan protocol for Django, so the event queue is
flushed when the server stops.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

from affy_middleware.django import wrap_asgi

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_shop.settings")

application = wrap_asgi(get_asgi_application())
