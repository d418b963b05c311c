"""Where option values come from: ``AFFY_*`` environment variables and config mappings.

Each option ``name`` has the variable ``AFFY_<NAME>``; its text is parsed here into the
field's type. A config mapping (Flask's ``app.config``, Django's settings) uses the same
names and may hold typed values, which are passed through as they are (the ``Settings``
checks then reject a wrong type).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final

from ._errors import AffyConfigError
from ._logging import logger

__all__ = ["ENV_VARS", "OPTIONS", "env_var", "parse_list", "read_options", "read_option"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_var(name: str) -> str:
    """The environment variable (and config key) of the option ``name``."""
    return "AFFY_" + name.upper()


def _parse_bool(var: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise AffyConfigError(f"{var}={raw!r} is not a boolean: use 1/0, true/false, yes/no or on/off")


def _parse_int(var: str, raw: str) -> int:
    try:
        return int(raw.strip().replace("_", ""))
    except ValueError:
        raise AffyConfigError(f"{var}={raw!r} is not an integer") from None


def _parse_float(var: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise AffyConfigError(f"{var}={raw!r} is not a number of seconds") from None
    return value


def _parse_optional_bool(var: str, raw: str) -> bool | None:
    if raw.strip().lower() in ("", "auto"):
        return None
    return _parse_bool(var, raw)


def parse_list(var: str, raw: str) -> tuple[str, ...]:
    """A comma-separated list, blanks left out."""
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _parse_client_id(var: str, raw: str) -> int | None:
    value = raw.strip()
    if not value:
        return None
    if not value.isdigit():
        raise AffyConfigError(
            f"{var}={raw!r} is not a client id: AFFY client ids are positive integers "
            "(see your AFFY dashboard, Settings > Tracking)"
        )
    return int(value)


def _optional_str(var: str, raw: str) -> str | None:
    return raw.strip() or None


def _parse_flush_on_teardown(var: str, raw: str) -> bool | None:
    # "" is False, as the Flask extension always read it (unlike cookie_secure's "" = auto).
    if raw.strip().lower() == "auto":
        return None
    return _parse_bool(var, raw)


def _stripped(var: str, raw: str) -> str:
    return raw.strip()


#: Every option, and how its environment variable's text becomes a field value.
OPTIONS: Final[dict[str, Callable[[str, str], Any]]] = {
    "client_id": _parse_client_id,
    "api_key": _optional_str,
    "api_url": _stripped,
    "enabled": _parse_bool,
    "ref_params": parse_list,
    "cookie_domain": _optional_str,
    "cookie_secure": _parse_optional_bool,
    "click_cookie": _stripped,
    "session_cookie": _stripped,
    "consent_cookie": _optional_str,
    "attribution_days": _parse_int,
    "queue_size": _parse_int,
    "queue_bytes": _parse_int,
    "max_in_flight": _parse_int,
    "timeout": _parse_float,
    "flush_timeout": _parse_float,
    "retry_deadline": _parse_float,
    "click_wait": _parse_float,
    "delivery": lambda var, raw: raw.strip().lower(),
    "spool_path": _optional_str,
    "outbox_url": _optional_str,
    "outbox_timeout": _parse_float,
    "flush_on_teardown": _parse_flush_on_teardown,
}

#: Every environment variable the library reads.
ENV_VARS: Final = tuple(env_var(name) for name in OPTIONS)


def read_option(
    name: str, config: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> Any:
    """The option's value from ``config``, else the environment (parsed), else None."""
    var = env_var(name)
    raw = config.get(var)
    if raw is not None:
        return OPTIONS[name](var, raw) if isinstance(raw, str) else raw
    env = os.environ if environ is None else environ
    return OPTIONS[name](var, env[var]) if var in env else None


def read_options(
    config: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Every option set in ``config`` (typed or text) or, failing that, in the environment."""
    values = {name: read_option(name, config, environ) for name in OPTIONS}
    found = {name: value for name, value in values.items() if value is not None}
    if "spool_path" in found:
        _warn_spool_path()
    return found


_warned = threading.Event()


def _warn_spool_path() -> None:
    """``AFFY_SPOOL_PATH`` still works, as the SQLite outbox's path; say so once."""
    if not _warned.is_set():
        _warned.set()
        logger.warning(
            "affy_middleware: AFFY_SPOOL_PATH is deprecated; set "
            "AFFY_OUTBOX_URL=sqlite:////absolute/path (the same file) instead"
        )
