"""WSGI entry point: ``gunicorn examples.django_shop.wsgi:application``.

Django's own application: ``AffyMiddleware`` is in ``settings.MIDDLEWARE``. Events still
queued when a worker stops get one short, bounded flush at exit (``AFFY_FLUSH_TIMEOUT``).
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_shop.settings")

application = get_wsgi_application()
