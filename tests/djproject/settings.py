"""Settings of the test project: AFFY_* only here (or in the environment the test sets)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

SECRET_KEY = "djproject-test-secret-key-" + "x" * 30
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "djproject.urls"
INSTALLED_APPS = ["affy_middleware.django", "djproject"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "affy_middleware.django.AffyMiddleware",
]
_DB = os.environ.get("DJPROJECT_DB") or str(Path(tempfile.mkdtemp(prefix="djproject-")) / "db")
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _DB}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

_client_id = os.environ.get("DJPROJECT_AFFY_CLIENT_ID", "7")
# Malformed on purpose in some tests: the system check names it.
AFFY_CLIENT_ID: int | str = int(_client_id) if _client_id.isdigit() else _client_id
if os.environ.get("DJPROJECT_AFFY_API_URL"):
    AFFY_API_URL = os.environ["DJPROJECT_AFFY_API_URL"]
    AFFY_API_KEY = os.environ.get("DJPROJECT_AFFY_API_KEY")
