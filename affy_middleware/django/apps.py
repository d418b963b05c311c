"""``INSTALLED_APPS = [..., "affy_middleware.django"]``: settings at start-up, checks,
management commands."""

from __future__ import annotations

import logging

from django.apps import AppConfig

from .. import _defaults
from .._errors import AffyConfigError
from . import conf

__all__ = ["AffyConfig"]

logger = logging.getLogger("affy_middleware")


class AffyConfig(AppConfig):  # type: ignore[misc]  # Django has no type stubs here
    """Reads ``settings.AFFY_*`` once at start-up and registers the ``affy.*`` checks."""

    name = "affy_middleware.django"
    label = "affy_middleware"  # "affy" could be a project's own app
    verbose_name = "AFFY affiliate tracking"
    default = True

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the checks)

        conf.watch()
        # Work outside a request (report_* from a job) uses settings.py's values, read
        # again after any change (override_settings), not the environment's alone.
        _defaults.default_source(conf.configured)
        try:
            conf.configured()
        except AffyConfigError:
            # Not raised here: ``manage.py check`` names it (affy.E001) and the middleware
            # raises it when the server starts, so every command is not broken by it.
            logger.debug("affy_middleware: malformed AFFY_* setting", exc_info=True)
