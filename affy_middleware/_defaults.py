"""The settings for work outside a request: ``report_*`` from a job, the CLI, a backend
that needs settings when none were given.

The last settings an entry point resolved (``_resolution.resolve``) become the default;
an integration whose settings change at run time installs a source to read them from.
Below ``delivery`` and ``_resolution`` both: it imports nothing of the library but
``Settings``.
"""

from __future__ import annotations

from collections.abc import Callable

from ._settings import Settings

__all__ = ["configure_default", "default_settings", "default_source", "forget_default"]

_default: Settings | None = None
#: Where the default comes from when none is configured: an integration's own settings
#: (Django's ``settings.py``), else the environment.
_source: Callable[[], Settings] | None = None


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
