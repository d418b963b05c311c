"""The settings a command runs with: the ``AFFY_*`` environment, then the command line."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .._settings import Settings
from .._settings_checks import is_loopback as _is_loopback

__all__ = ["settings_from", "settings_summary", "is_local"]


def settings_from(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    """The environment's settings with the command-line overrides (AffyConfigError if bad)."""
    overrides: dict[str, Any] = {}
    for name in ("api_url", "client_id", "api_key", "timeout"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    # A flag replaces its variable entirely: a malformed AFFY_CLIENT_ID does not matter
    # when --client-id is given.
    env = {
        key: text
        for key, text in (os.environ if environ is None else environ).items()
        if key.removeprefix("AFFY_").lower() not in overrides or not key.startswith("AFFY_")
    }
    return Settings.from_env(env, **overrides)


def is_local(settings: Settings) -> bool:
    """Whether the API URL is this machine (a sandbox), not AFFY."""
    return _is_loopback(urlsplit(settings.api_url).hostname or "")


def settings_summary(settings: Settings) -> dict[str, Any]:
    return {
        "api_url": settings.api_url,
        "client_id": settings.client_id,
        "api_key": "set" if settings.api_key else None,
        "enabled": settings.enabled,
        "delivery": settings.delivery,
        "spool_path": settings.spool_path,
        "timeout": settings.timeout,
    }
