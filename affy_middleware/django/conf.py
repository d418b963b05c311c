"""Django's ``settings.AFFY_*``, read once per process.

:func:`affy_settings` resolves afresh (``settings.AFFY_*``, else the environment variable of
the same name, then keyword overrides). :func:`configured` is the process's settings: read
on first use (``AffyConfig.ready()`` does it at start-up) and made the default for
``report_*`` outside a request, the decorators and the delivery, in every process (web,
management commands, Celery workers). Django's ``setting_changed`` signal (tests'
``override_settings``) forgets them, so the next use reads them again.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from .. import _defaults
from .._resolution import resolve
from .._settings import ENV_VARS, Settings

__all__ = [
    "affy_settings",
    "configured",
    "forget",
    "watch",
    "django_config",
    "environ_overlay",
]

_lock = threading.Lock()
_configured: Settings | None = None


def django_config() -> dict[str, Any]:
    """The ``AFFY_*`` names set (not None) in Django's settings."""
    from django.conf import settings as django_settings

    return {
        name: getattr(django_settings, name)
        for name in (*ENV_VARS, "AFFY_ON_ERROR")  # the hook: a callable, config only
        if getattr(django_settings, name, None) is not None
    }


def affy_settings(**overrides: Any) -> Settings:
    """``Settings`` from Django's ``settings.AFFY_*``, else the environment, then
    ``overrides``. Raises ``AffyConfigError`` for a malformed value (at start-up)."""
    return resolved(None, overrides)


def resolved(settings: Settings | None, overrides: Mapping[str, Any]) -> Settings:
    # The one resolution: Django's settings are read only when no Settings were given.
    config = django_config() if settings is None else None
    return resolve(settings, overrides, framework_config=config)


def configured() -> Settings:
    """The process's settings from ``settings.py`` (read once; ``AffyConfigError`` if bad)."""
    global _configured
    current = _configured
    if current is None:
        with _lock:
            current = _configured
            if current is None:
                current = _configured = affy_settings()
    return current


def forget() -> None:
    """Read the settings again on next use (and the default for work outside a request,
    which ``configured()`` made them: ``report_*`` from a job sees the change too)."""
    global _configured
    with _lock:
        _configured = None
        _defaults.forget_default()


def watch() -> None:
    """Forget the settings whenever an ``AFFY_*`` setting changes (idempotent)."""
    from django.core.signals import setting_changed

    setting_changed.connect(_on_setting_changed, dispatch_uid="affy_middleware.django.conf")


def _on_setting_changed(*, setting: str, **_: object) -> None:
    if setting.startswith("AFFY_") or setting == "DATABASES":
        from . import outbox  # which database the outbox is: asked again

        outbox.forget()
    if setting.startswith("AFFY_"):
        forget()


def environ_overlay(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with Django's ``AFFY_*`` settings on top, as environment text: what the
    ``affy`` command line reads when a management command runs it."""
    out = dict(environ)
    for name, value in django_config().items():
        if name == "AFFY_ON_ERROR":
            continue  # a callable: no environment text means it
        if isinstance(value, bool):
            text = "1" if value else "0"
        elif isinstance(value, (list, tuple, set, frozenset)):
            text = ",".join(str(item) for item in value)
        else:
            text = str(value)
        out[name] = text
    return out
