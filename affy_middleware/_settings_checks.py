"""The checks every ``Settings`` passes when it is made: fail loudly at set-up.

A malformed value raises :class:`AffyConfigError` naming the variable and the option.
Some values are normalised on the way (a comma string of ``ref_params`` becomes a tuple,
the API URL loses its trailing slash, seconds become floats).
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Any, NoReturn
from urllib.parse import urlsplit

from ._errors import AffyConfigError
from ._settings_sources import env_var, parse_list

__all__ = ["validate", "is_loopback"]

#: The ``Settings`` being made. Its values are not trusted yet (each check tests their
#: type), so it is not typed as ``Settings``: this module does not import the one that
#: calls it.
Options = Any

_COOKIE_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,64}$")
_PARAM_NAME = re.compile(r"^[A-Za-z0-9_.\-\[\]]{1,64}$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"^\.?{_LABEL}(?:\.{_LABEL})*$")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine (plain http is allowed to it, for the sandbox)."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _fail(name: str, problem: str) -> NoReturn:
    raise AffyConfigError(f"{env_var(name)} ({name}) {problem}")


def _set(settings: Options, name: str, value: Any) -> None:
    object.__setattr__(settings, name, value)  # normalising a frozen dataclass, once


def validate(settings: Options, *, example_url: str) -> None:
    """Check (and normalise) every option; ``example_url`` is shown for a bad API URL."""
    s = settings
    if s.client_id is not None and (
        isinstance(s.client_id, bool) or not isinstance(s.client_id, int) or s.client_id <= 0
    ):
        _fail("client_id", f"must be a positive integer, got {s.client_id!r}")
    if s.api_key is not None and (
        not isinstance(s.api_key, str)
        or not s.api_key
        or any(c.isspace() or not c.isprintable() for c in s.api_key)
    ):
        # Never echo the key itself, even a broken one.
        _fail("api_key", "must be a non-empty string without spaces or control chars")
    _validate_url(s, example_url)
    if not isinstance(s.enabled, bool):
        _fail("enabled", f"must be a boolean, got {s.enabled!r}")
    if s.cookie_secure is not None and not isinstance(s.cookie_secure, bool):
        _fail("cookie_secure", "must be true, false or auto")
    if s.flush_on_teardown is not None and not isinstance(s.flush_on_teardown, bool):
        _fail("flush_on_teardown", "must be true, false or auto")
    _validate_names(s)
    if s.on_error is not None and not callable(s.on_error):
        _fail("on_error", f"must be a callable taking (event, reason), got {s.on_error!r}")
    _check_int(s, "attribution_days", 1, 3650)
    _check_int(s, "queue_size", 1, 10_000_000)
    _check_int(s, "queue_bytes", 1024, 1 << 34)
    _check_int(s, "max_in_flight", 1, 256)
    _check_seconds(s, "timeout", 0.001, 300)
    _check_seconds(s, "flush_timeout", 0, 3600)
    _check_seconds(s, "retry_deadline", 1, 365 * 86400)
    _check_seconds(s, "click_wait", 0, 86400)
    _check_seconds(s, "outbox_timeout", 0.05, 60)
    if s.delivery not in ("thread", "sync", "off"):
        _fail("delivery", f"must be thread, sync or off, got {s.delivery!r}")
    if s.spool_path is not None and (not isinstance(s.spool_path, str) or not s.spool_path):
        _fail("spool_path", "must be a file path")
    _validate_outbox(s)


def _validate_outbox(s: Options) -> None:
    """``outbox_url``: sqlite:///path (then ``spool_path`` is that path) or postgresql://.
    The URL is never echoed: it may carry a password."""
    url = s.outbox_url
    if url is None:
        return
    if not isinstance(url, str):
        _fail("outbox_url", "must be a sqlite:///path or postgresql://... URL")
    if url.startswith("sqlite:///"):
        # As SQLAlchemy reads it: sqlite:///app.db is relative, sqlite:////var/app.db not.
        path = url[len("sqlite:///") :]
        if not path:
            _fail("outbox_url", "names no file: use sqlite:////var/lib/app/affy.sqlite")
        if s.spool_path is not None and s.spool_path != path:
            _fail("outbox_url", f"names {path!r} but AFFY_SPOOL_PATH names {s.spool_path!r}")
        _set(s, "spool_path", path)
    elif url.startswith(("postgresql://", "postgres://")):
        if s.spool_path is not None:
            _fail("outbox_url", "names PostgreSQL and AFFY_SPOOL_PATH a SQLite file: set one")
        try:
            urlsplit(url).port  # noqa: B018 (parsing it is the check)
        except ValueError:
            _fail("outbox_url", "is not a valid postgresql:// URL (bad port?)")
    else:
        scheme = url.split("://", 1)[0] if "://" in url else "no scheme"
        _fail("outbox_url", f"must start with sqlite:/// or postgresql:// (got {scheme})")


def _validate_names(s: Options) -> None:
    """Query parameter names, cookie names and the cookie domain."""
    if isinstance(s.ref_params, str):
        _set(s, "ref_params", parse_list("", s.ref_params))
    _set(s, "ref_params", tuple(s.ref_params))
    if not s.ref_params:
        _fail("ref_params", "must name at least one query parameter, e.g. 'ref,via'")
    for param in s.ref_params:
        if not isinstance(param, str) or not _PARAM_NAME.match(param):
            _fail("ref_params", f"has an invalid parameter name {param!r}")
    for name in ("click_cookie", "session_cookie", "consent_cookie"):
        value = getattr(s, name)
        if value is None and name == "consent_cookie":
            continue
        if not isinstance(value, str) or not _COOKIE_NAME.match(value):
            _fail(name, f"is not a valid cookie name: {value!r}")
    if s.click_cookie == s.session_cookie:
        _fail("session_cookie", "must differ from click_cookie")
    if s.cookie_domain is not None and (
        not isinstance(s.cookie_domain, str) or not _DOMAIN.match(s.cookie_domain)
    ):
        _fail("cookie_domain", f"is not a domain name: {s.cookie_domain!r}")


def _validate_url(s: Options, example_url: str) -> None:
    url = s.api_url
    if not isinstance(url, str):
        _fail("api_url", f"must be a URL string, got {url!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        _fail("api_url", f"must be an http(s) URL such as {example_url}, got {url!r}")
    if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
        _fail(
            "api_url",
            f"uses plain http to a non-loopback host ({parts.hostname}); use https, "
            "or http://127.0.0.1:PORT for the local sandbox",
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        _fail("api_url", "must not carry a query, fragment or credentials")
    _set(s, "api_url", url.rstrip("/"))


def _check_int(s: Options, name: str, low: int, high: int) -> None:
    value = getattr(s, name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        _fail(name, f"must be an integer from {low} to {high}, got {value!r}")


def _check_seconds(s: Options, name: str, low: float, high: float) -> None:
    value = getattr(s, name)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        _fail(name, f"must be a number of seconds from {low} to {high}, got {value!r}")
    _set(s, name, float(value))
