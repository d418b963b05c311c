"""Settings of the test project: AFFY_* only here (or in the environment the test sets)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

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
DATABASES: dict[str, dict[str, object]] = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _DB}
}
if os.environ.get("DJPROJECT_PG_URL"):  # postgresql://user:password@host:port/name
    _pg = urlsplit(os.environ["DJPROJECT_PG_URL"])
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _pg.path.lstrip("/"),
        "USER": unquote(_pg.username or ""),
        "PASSWORD": unquote(_pg.password or ""),
        "HOST": _pg.hostname or "",
        "PORT": str(_pg.port or ""),
    }
if os.environ.get("DJPROJECT_OTHER_DB"):  # a second database (a SQLite file)
    DATABASES["other"] = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["DJPROJECT_OTHER_DB"],
    }
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

_client_id = os.environ.get("DJPROJECT_AFFY_CLIENT_ID", "7")
# Malformed on purpose in some tests: the system check names it.
AFFY_CLIENT_ID: int | str = int(_client_id) if _client_id.isdigit() else _client_id
if os.environ.get("DJPROJECT_AFFY_API_URL"):
    AFFY_API_URL = os.environ["DJPROJECT_AFFY_API_URL"]
    AFFY_API_KEY = os.environ.get("DJPROJECT_AFFY_API_KEY")
if os.environ.get("DJPROJECT_AFFY_OUTBOX_URL"):
    AFFY_OUTBOX_URL = os.environ["DJPROJECT_AFFY_OUTBOX_URL"]
