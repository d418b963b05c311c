"""Settings: every option from environment variables, keyword arguments or a config mapping."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from ._errors import AffyConfigError

__all__ = ["Settings", "DeliveryMode", "ENV_VARS", "warn_if_inactive"]

logger = logging.getLogger("affy_middleware")

DeliveryMode = Literal["thread", "sync", "off"]

#: AFFY's production API.
DEFAULT_API_URL: Final = "https://api.affy.pro"
#: Query parameters an affiliate redirect may land with (AFFY does not say which it uses).
DEFAULT_REF_PARAMS: Final = ("affy_ref", "ref", "aff", "via")
#: AFFY's attribution window (30 days).
DEFAULT_ATTRIBUTION_DAYS: Final = 30
#: The cookie AFFY's JavaScript snippet writes; we read and write the same one.
DEFAULT_CLICK_COOKIE: Final = "affy_click_id"
DEFAULT_SESSION_COOKIE: Final = "affy_session_id"
#: Events held in memory before new ones are dropped (and counted).
DEFAULT_QUEUE_SIZE: Final = 10_000
#: Bytes of event bodies held in memory before new ones are dropped (16 MiB).
DEFAULT_QUEUE_BYTES: Final = 16 * 1024 * 1024
#: Requests to AFFY in flight at once (events of one visit still go in order).
DEFAULT_MAX_IN_FLIGHT: Final = 8
#: Seconds for one HTTP call to AFFY.
DEFAULT_TIMEOUT: Final = 5.0
#: Seconds the process may spend delivering queued events at exit.
DEFAULT_FLUSH_TIMEOUT: Final = 2.0
#: Seconds an event keeps being retried before it is given up (24 hours).
DEFAULT_RETRY_DEADLINE: Final = 24 * 3600.0

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_COOKIE_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,64}$")
_PARAM_NAME = re.compile(r"^[A-Za-z0-9_.\-\[\]]{1,64}$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"^\.?{_LABEL}(?:\.{_LABEL})*$")


def _env(name: str) -> str:
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


def _parse_list(var: str, raw: str) -> tuple[str, ...]:
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


#: How each environment variable's text becomes a field value.
_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "client_id": _parse_client_id,
    "api_key": _optional_str,
    "api_url": lambda var, raw: raw.strip(),
    "enabled": _parse_bool,
    "ref_params": _parse_list,
    "cookie_domain": _optional_str,
    "cookie_secure": _parse_optional_bool,
    "click_cookie": lambda var, raw: raw.strip(),
    "session_cookie": lambda var, raw: raw.strip(),
    "consent_cookie": _optional_str,
    "attribution_days": _parse_int,
    "queue_size": _parse_int,
    "queue_bytes": _parse_int,
    "max_in_flight": _parse_int,
    "timeout": _parse_float,
    "flush_timeout": _parse_float,
    "retry_deadline": _parse_float,
    "delivery": lambda var, raw: raw.strip().lower(),
    "spool_path": _optional_str,
}

#: Every environment variable the library reads.
ENV_VARS: Final = tuple(_env(name) for name in _PARSERS)


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Settings:
    """Every option of the library, validated once.

    Build it from the environment with :meth:`from_env`, from keyword arguments, or both
    (keywords win)::

        settings = Settings.from_env(client_id=42)
        settings = Settings(client_id=42, api_key="sk_...", delivery="sync")

    A malformed value raises :class:`AffyConfigError` naming the variable. A missing
    ``client_id`` leaves tracking off (see :attr:`active`).
    """

    #: Your numeric AFFY client id (``AFFY_CLIENT_ID``). ``None`` turns tracking off.
    client_id: int | None = None
    #: AFFY API key, sent as ``Authorization: Bearer`` (``AFFY_API_KEY``). Never shown.
    api_key: str | None = field(default=None, repr=False)
    #: Base URL of the Tracking API (``AFFY_API_URL``); https, or http to loopback only.
    api_url: str = DEFAULT_API_URL
    #: Master switch (``AFFY_ENABLED``).
    enabled: bool = True
    #: Query parameters that carry the affiliate reference (``AFFY_REF_PARAMS``, comma list).
    ref_params: tuple[str, ...] = DEFAULT_REF_PARAMS
    #: ``Domain`` attribute of our cookies, to share them across subdomains.
    cookie_domain: str | None = None
    #: ``Secure`` attribute: ``None`` means on for https requests only.
    cookie_secure: bool | None = None
    click_cookie: str = DEFAULT_CLICK_COOKIE
    session_cookie: str = DEFAULT_SESSION_COOKIE
    #: Name of a consent cookie; when set, cookies are only written once it says yes.
    consent_cookie: str | None = None
    attribution_days: int = DEFAULT_ATTRIBUTION_DAYS
    queue_size: int = DEFAULT_QUEUE_SIZE
    queue_bytes: int = DEFAULT_QUEUE_BYTES
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    timeout: float = DEFAULT_TIMEOUT
    flush_timeout: float = DEFAULT_FLUSH_TIMEOUT
    retry_deadline: float = DEFAULT_RETRY_DEADLINE
    #: ``thread`` (background worker), ``sync`` (inline, for scripts) or ``off``.
    delivery: DeliveryMode = "thread"
    #: A SQLite file that keeps events until AFFY accepted them (``AFFY_SPOOL_PATH``).
    spool_path: str | None = None

    def __post_init__(self) -> None:
        self._validate()
        # Settings are a dict key on every enqueue (one dispatcher per Settings): hash once.
        values = tuple(getattr(self, f.name) for f in dataclasses.fields(self))
        object.__setattr__(self, "_hash", hash(values))

    def __hash__(self) -> int:
        return self._hash  # type: ignore[no-any-return, attr-defined]

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every ``AFFY_*`` variable from ``environ`` (default ``os.environ``)."""
        return cls.from_mapping({}, environ=environ, **overrides)

    @classmethod
    def from_mapping(
        cls,
        config: Mapping[str, Any],
        *,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Read ``AFFY_*`` keys from ``config`` (Flask's ``app.config``, Django settings),
        falling back to the environment, then apply keyword ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, parse in _PARSERS.items():
            var = _env(name)
            if var in config and config[var] is not None:
                raw = config[var]
                values[name] = parse(var, raw) if isinstance(raw, str) else raw
            elif var in env:
                values[name] = parse(var, env[var])
        unknown = set(overrides) - set(_PARSERS)
        if unknown:
            raise AffyConfigError(
                f"unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(_PARSERS)}"
            )
        values.update(overrides)
        try:
            return cls(**values)
        except TypeError as exc:  # a wrongly typed keyword argument
            raise AffyConfigError(str(exc)) from None

    def replace(self, **changes: Any) -> Settings:
        """A copy with some options changed (validated again)."""
        return dataclasses.replace(self, **changes)

    # -- derived ------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """Whether tracking does anything: enabled, a client id, and delivery not off."""
        return self.enabled and self.client_id is not None and self.delivery != "off"

    @property
    def max_age(self) -> int:
        """``Max-Age`` of our cookies, in seconds: the attribution window."""
        return self.attribution_days * 86400

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.repr
        )
        key = "'***'" if self.api_key else "None"
        return f"Settings({shown}, api_key={key})"

    # -- validation ---------------------------------------------------------------------

    def _fail(self, name: str, problem: str) -> None:
        raise AffyConfigError(f"{_env(name)} ({name}) {problem}")

    def _validate(self) -> None:
        if self.client_id is not None and (
            isinstance(self.client_id, bool)
            or not isinstance(self.client_id, int)
            or self.client_id <= 0
        ):
            self._fail("client_id", f"must be a positive integer, got {self.client_id!r}")
        if self.api_key is not None and (
            not isinstance(self.api_key, str)
            or not self.api_key
            or any(c.isspace() or not c.isprintable() for c in self.api_key)
        ):
            # Never echo the key itself, even a broken one.
            self._fail("api_key", "must be a non-empty string without spaces or control chars")
        self._validate_url()
        for name in ("enabled",):
            if not isinstance(getattr(self, name), bool):
                self._fail(name, f"must be a boolean, got {getattr(self, name)!r}")
        if self.cookie_secure is not None and not isinstance(self.cookie_secure, bool):
            self._fail("cookie_secure", "must be true, false or auto")
        if isinstance(self.ref_params, str):
            object.__setattr__(self, "ref_params", _parse_list("", self.ref_params))
        object.__setattr__(self, "ref_params", tuple(self.ref_params))
        if not self.ref_params:
            self._fail("ref_params", "must name at least one query parameter, e.g. 'ref,via'")
        for param in self.ref_params:
            if not isinstance(param, str) or not _PARAM_NAME.match(param):
                self._fail("ref_params", f"has an invalid parameter name {param!r}")
        for name in ("click_cookie", "session_cookie", "consent_cookie"):
            value = getattr(self, name)
            if value is None and name == "consent_cookie":
                continue
            if not isinstance(value, str) or not _COOKIE_NAME.match(value):
                self._fail(name, f"is not a valid cookie name: {value!r}")
        if self.click_cookie == self.session_cookie:
            self._fail("session_cookie", "must differ from click_cookie")
        if self.cookie_domain is not None and (
            not isinstance(self.cookie_domain, str) or not _DOMAIN.match(self.cookie_domain)
        ):
            self._fail("cookie_domain", f"is not a domain name: {self.cookie_domain!r}")
        self._check_int("attribution_days", 1, 3650)
        self._check_int("queue_size", 1, 10_000_000)
        self._check_int("queue_bytes", 1024, 1 << 34)
        self._check_int("max_in_flight", 1, 256)
        self._check_seconds("timeout", 0.001, 300)
        self._check_seconds("flush_timeout", 0, 3600)
        self._check_seconds("retry_deadline", 1, 365 * 86400)
        if self.delivery not in ("thread", "sync", "off"):
            self._fail("delivery", f"must be thread, sync or off, got {self.delivery!r}")
        if self.spool_path is not None and (
            not isinstance(self.spool_path, str) or not self.spool_path
        ):
            self._fail("spool_path", "must be a file path")

    def _validate_url(self) -> None:
        url = self.api_url
        if not isinstance(url, str):
            self._fail("api_url", f"must be a URL string, got {url!r}")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self._fail("api_url", f"must be an http(s) URL such as {DEFAULT_API_URL}, got {url!r}")
        if parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
            self._fail(
                "api_url",
                f"uses plain http to a non-loopback host ({parts.hostname}); use https, "
                "or http://127.0.0.1:PORT for the local sandbox",
            )
        if parts.query or parts.fragment or parts.username or parts.password:
            self._fail("api_url", "must not carry a query, fragment or credentials")
        object.__setattr__(self, "api_url", url.rstrip("/"))

    def _check_int(self, name: str, low: int, high: int) -> None:
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self._fail(name, f"must be an integer from {low} to {high}, got {value!r}")

    def _check_seconds(self, name: str, low: float, high: float) -> None:
        value = getattr(self, name)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or not low <= value <= high
        ):
            self._fail(name, f"must be a number of seconds from {low} to {high}, got {value!r}")
        object.__setattr__(self, name, float(value))


_warned_inactive = False


def warn_if_inactive(settings: Settings) -> None:
    """Log, once per process, why tracking is off when it is off for lack of a client id."""
    global _warned_inactive
    if settings.enabled and settings.client_id is None and not _warned_inactive:
        _warned_inactive = True
        logger.warning(
            "affy_middleware: AFFY_CLIENT_ID is not set, tracking is off. "
            "Set it to your numeric AFFY client id to turn tracking on."
        )
