"""Which ``Settings`` an entry point runs with: the one resolution every entry point uses.

Order: ``settings`` given, else the framework's config (Flask ``app.config``, Django
``settings.py``), else the environment; then keyword overrides on top. The last settings a
middleware or integration resolved become the default for work outside a request
(``report_*`` from a job, the CLI), which ``_defaults`` keeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import delivery
from ._defaults import configure_default
from ._settings import Settings, warn_if_inactive

__all__ = ["resolve"]


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
    delivery.prepare(settings)  # an outbox opens now, and dead processes' rows go out
    return settings
