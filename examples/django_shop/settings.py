"""Settings of the Django Tiny Shop (``DJANGO_SETTINGS_MODULE=examples.django_shop.settings``).

Everything deployment-specific comes from the environment. AFFY options may be set here
under their ``AFFY_*`` names; the ``affy_middleware.django`` app reads them once at start-up
and falls back to the environment variable of the same name (so ``AFFY_CLIENT_ID``,
``AFFY_API_KEY`` and ``AFFY_API_URL`` need not appear here at all).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent

# A random key per start unless one is given: sessions don't survive a restart then.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(40)
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")

ROOT_URLCONF = "examples.django_shop.urls"
INSTALLED_APPS = ["affy_middleware.django"]  # checks, manage.py affy_doctor, settings once
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # After SecurityMiddleware: an http landing redirected to https is tracked once.
    "affy_middleware.django.AffyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
# No database: the shop keeps its customer in a signed session cookie.
DATABASES: dict[str, dict[str, str]] = {}
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
USE_TZ = True

# AFFY: read by the affy_middleware.django app; unset names fall back to the AFFY_* env.
AFFY_REF_PARAMS = os.environ.get("AFFY_REF_PARAMS", "affy_ref,ref,aff,via")
