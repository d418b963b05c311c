"""Which ``Settings`` an entry point runs with: the one resolution every entry point uses.

Order: ``settings`` given, else the framework's config (Flask ``app.config``, Django
``settings.py``), else the environment; then keyword overrides on top. The last settings a
middleware or integration resolved become the default for work outside a request
(``report_*`` from a job, the CLI).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._settings import Settings, warn_if_inactive

__all__ = ["resolve", "configure_default", "default_settings", "default_source", "forget_default"]

_default: Settings | None = None
#: Where the default comes from when none is configured: an integration's own settings
#: (Django's ``settings.py``), else the environment.
_source: Callable[[], Settings] | None = None


def resolve(
    settings: Settings | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    framework_config: Mapping[str, Any] | None = None,
) -> Settings:
    """The settings an entry point runs with (see the module docstring). Warns once when
    tracking is off for lack of a client id, and makes the result the default for
    ``report_*`` calls made outside a request."""
    overrides = dict(overrides or {})
    if settings is None:
        if framework_config is not None:
            settings = Settings.from_mapping(framework_config, **overrides)
        else:
            settings = Settings.from_env(**overrides)
    elif overrides:
        settings = settings.replace(**overrides)
    warn_if_inactive(settings)
    configure_default(settings)
    from . import delivery  # here: importing it at the top would be circular

    delivery.prepare(settings)  # an outbox opens now, and dead processes' rows go out
    return settings


def configure_default(settings: Settings) -> None:
    """Make ``settings`` the ones used by calls made outside any middleware's request."""
    global _default
    _default = settings


def default_source(source: Callable[[], Settings] | None) -> None:
    """Read the default from ``source()`` (which resolves, so configures it) rather than
    the environment when none is configured, or was forgotten: an integration whose
    settings can change at run time (Django's ``override_settings``) installs one."""
    global _source
    _source = source


def forget_default() -> None:
    """The configured default is stale: the next use reads it again."""
    global _default
    _default = None


def default_settings() -> Settings:
    """Settings for work outside a request: the last configured, else the integration's
    (``default_source``), else the environment."""
    global _default
    current = _default
    if current is None:
        current = _default = _source() if _source is not None else Settings.from_env()
    return current
