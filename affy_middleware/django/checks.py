"""System checks (``manage.py check``), registered by ``AffyConfig.ready()``.

==========  ============================================================================
affy.E001   an ``AFFY_*`` setting is malformed (the message names it and the fix)
affy.E002   ``AffyMiddleware`` is listed more than once in ``MIDDLEWARE``
affy.E003   ``AffyMiddleware`` comes before ``SecurityMiddleware`` while
            ``SECURE_SSL_REDIRECT`` is on: an http landing would be tracked, then
            redirected to https and tracked again
affy.E004   the PostgreSQL outbox (``AFFY_OUTBOX_URL``) is reachable but its tables are
            missing and cannot be created by this user (run ``affy outbox init``)
affy.W001   ``AffyMiddleware`` is not in ``MIDDLEWARE`` (nothing is attributed, unless
            ``wsgi.py``/``asgi.py`` wrap the application: then silence it)
==========  ============================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings as django_settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.utils.module_loading import import_string

from .._errors import AffyConfigError
from .._settings import Settings
from ..delivery.outbox import OutboxError
from ..delivery.outbox.address import address
from . import conf
from .middleware import AffyMiddleware

__all__ = ["check_settings", "check_middleware", "check_outbox"]

SECURITY_MIDDLEWARE = "django.middleware.security.SecurityMiddleware"


def check_settings(app_configs: Sequence[Any] | None = None, **_: Any) -> list[CheckMessage]:
    """affy.E001: every ``AFFY_*`` setting (and environment variable) parses."""
    try:
        Settings.from_mapping(conf.django_config())
    except AffyConfigError as exc:
        return [
            Error(
                f"AFFY setting malformed: {exc}",
                hint="Fix it in settings.py (or the AFFY_* environment variable).",
                id="affy.E001",
            )
        ]
    return []


def check_middleware(app_configs: Sequence[Any] | None = None, **_: Any) -> list[CheckMessage]:
    """affy.W001, affy.E002, affy.E003: where ``AffyMiddleware`` is in ``MIDDLEWARE``."""
    middleware = list(getattr(django_settings, "MIDDLEWARE", None) or ())
    ours = [i for i, path in enumerate(middleware) if _is_subclass(path, AffyMiddleware)]
    if not ours:
        return [
            Warning(
                "affy_middleware.django.AffyMiddleware is not in MIDDLEWARE: no visit is "
                "attributed.",
                hint="Add it to MIDDLEWARE (after SecurityMiddleware); if wsgi.py or asgi.py "
                "wrap the application (wrap_wsgi/wrap_asgi), add 'affy.W001' to "
                "SILENCED_SYSTEM_CHECKS.",
                id="affy.W001",
            )
        ]
    errors: list[CheckMessage] = []
    if len(ours) > 1:
        errors.append(
            Error(
                f"AffyMiddleware is listed {len(ours)} times in MIDDLEWARE.",
                hint="Keep one entry.",
                id="affy.E002",
            )
        )
    security = [i for i, path in enumerate(middleware) if _is_security(path)]
    redirects = getattr(django_settings, "SECURE_SSL_REDIRECT", False)
    if redirects and security and ours[0] < security[0]:
        errors.append(
            Error(
                "AffyMiddleware comes before SecurityMiddleware while SECURE_SSL_REDIRECT "
                "is on: an http landing would be tracked, redirected, and tracked again.",
                hint=f"Move it after {SECURITY_MIDDLEWARE!r}.",
                id="affy.E003",
            )
        )
    return errors


def check_outbox(app_configs: Sequence[Any] | None = None, **_: Any) -> list[CheckMessage]:
    """affy.E004: the PostgreSQL outbox's tables exist, or this user can create them (as
    the first event would). An unreachable server is not reported here: the start-up
    error says so already, and a build step without a database must still pass."""
    try:
        settings = Settings.from_mapping(conf.django_config())
    except AffyConfigError:
        return []  # affy.E001 reports it
    where = address(settings)
    if where is None or where.dialect != "postgresql":
        return []
    url = where.location
    from ..delivery.outbox.postgres.store import PostgresOutbox

    try:
        PostgresOutbox(url).close()  # creates the tables when missing, as first use does
        return []
    except OutboxError as exc:
        try:
            PostgresOutbox(url, create=False).close()
        except OutboxError:
            return []  # unreachable: the tables were not the problem
        reason = exc
    return [
        Error(
            f"The outbox's tables are missing at {where.shown} and this user cannot "
            f"create them: {reason}",
            hint="Create them once as their owner: `affy outbox init` (or print the SQL "
            "with `affy outbox init --sql`), then grant this user SELECT, INSERT, UPDATE "
            "and DELETE on affy_outbox and affy_outbox_dead and USAGE on the sequence "
            "affy_outbox_seq_seq (docs/deployment.md, Tables).",
            id="affy.E004",
        )
    ]


def _is_security(path: str) -> bool:
    if path == SECURITY_MIDDLEWARE:
        return True
    from django.middleware.security import SecurityMiddleware

    return _is_subclass(path, SecurityMiddleware)


def _is_subclass(path: object, cls: type) -> bool:
    if not isinstance(path, str):
        return False
    try:
        found = import_string(path)
    except ImportError:
        return False  # Django's own start-up names a middleware that does not import
    return isinstance(found, type) and issubclass(found, cls)


register(check_settings, "affy")
register(check_middleware, "affy")
register(check_outbox, "affy")
