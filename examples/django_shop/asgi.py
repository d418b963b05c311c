"""ASGI entry point: ``uvicorn examples.django_shop.asgi:application``.

Django's own application: ``AffyMiddleware`` is in ``settings.MIDDLEWARE`` and runs on the
event loop for async views. Django does not speak the lifespan protocol; events still
queued at shutdown get the bounded at-exit flush (``AFFY_FLUSH_TIMEOUT``). To flush in
lifespan shutdown instead, wrap it: ``application = wrap_asgi(get_asgi_application())``
(``affy_middleware.django``; the middleware class then lets the wrapper track).
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_shop.settings")

application = get_asgi_application()
