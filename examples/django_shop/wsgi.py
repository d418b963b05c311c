"""WSGI entry point: ``gunicorn examples.django_shop.wsgi:application``.

Django's application, wrapped by ``AffyMiddleware`` (settings from Django settings or env).
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

from affy_middleware.django import wrap_wsgi

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_shop.settings")

application = wrap_wsgi(get_wsgi_application())
