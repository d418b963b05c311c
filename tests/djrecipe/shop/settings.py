"""The shop's settings: every AFFY option is here (no AFFY_* environment variable)."""

SECRET_KEY = "djrecipe-not-a-secret-" + "x" * 40
DEBUG = False
ALLOWED_HOSTS = ["localhost"]
USE_TZ = True
ROOT_URLCONF = "shop.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": "shop.sqlite3",  # the tests use a test database (in memory)
        "ATOMIC_REQUESTS": True,  # a view's writes and its conversion commit together
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = ["affy_middleware.django", "shop"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "affy_middleware.django.AffyMiddleware",
]
AFFY_CLIENT_ID = 4242
AFFY_REF_PARAMS = ["partner", "ref"]
