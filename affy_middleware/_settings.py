"""Settings: every option from environment variables, keyword arguments or a config mapping.

The options and their defaults are here; reading them from the environment or a config
mapping is ``_settings_sources``, the checks every ``Settings`` passes ``_settings_checks``,
and which settings an entry point runs with ``_resolution`` (``_defaults``: those of work
outside a request).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from ._errors import AffyConfigError
from ._logging import log_fields
from ._settings_checks import validate
from ._settings_sources import ENV_VARS, OPTIONS, read_options

__all__ = ["Settings", "DeliveryMode", "ENV_VARS", "warn_if_inactive", "DEFAULT_API_URL"]

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
#: Seconds a lead waits for AFFY to know its click (sent by another process) before it
#: goes anyway: longer than a click's backoff after a short outage (the breaker's pause
#: is capped at 30 s), short enough that a lead whose click never comes is not held long.
DEFAULT_CLICK_WAIT: Final = 120.0
DEFAULT_OUTBOX_TIMEOUT: Final = 1.0


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
    #: Seconds a lead waits for its click to be known at AFFY (``AFFY_CLICK_WAIT``).
    click_wait: float = DEFAULT_CLICK_WAIT
    #: ``thread`` (background worker), ``sync`` (inline, for scripts) or ``off``.
    delivery: DeliveryMode = "thread"
    #: A SQLite file that keeps events until AFFY accepted them (``AFFY_SPOOL_PATH``).
    spool_path: str | None = None
    #: The outbox (``AFFY_OUTBOX_URL``): ``sqlite:///path`` (the same as ``spool_path``)
    #: or ``postgresql://user:password@host/db`` for a fleet. Its password is a secret.
    outbox_url: str | None = field(default=None, repr=False)
    #: Seconds a request may wait on the PostgreSQL outbox in all (for a connection, to
    #: connect, for its write), bounded on our side: a frozen server holds no request
    #: longer (``AFFY_OUTBOX_TIMEOUT``). Past it the event waits in memory.
    outbox_timeout: float = DEFAULT_OUTBOX_TIMEOUT
    #: Flask: wait (bounded by ``flush_timeout``) for the request's events after each
    #: request (``AFFY_FLUSH_ON_TEARDOWN``). ``None``: only when ``delivery`` is ``sync``.
    flush_on_teardown: bool | None = None
    #: Called as ``on_error(event, reason)`` for each event given up (keyword only; not an
    #: environment variable; ``AFFY_ON_ERROR`` in Flask's or Django's config). Compared
    #: by identity: two Settings with the same hook object share one backend.
    on_error: Callable[[Any, str], object] | None = field(default=None, kw_only=True, compare=False)

    def __post_init__(self) -> None:
        validate(self, example_url=DEFAULT_API_URL)
        # Settings are a dict key on every enqueue (one dispatcher per Settings): hash once.
        values = tuple(getattr(self, f.name) for f in dataclasses.fields(self) if f.compare)
        object.__setattr__(self, "_hash", hash((values, id(self.on_error))))

    def __hash__(self) -> int:
        return self._hash  # type: ignore[no-any-return, attr-defined]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Settings):
            return NotImplemented
        # The hook by identity: a callable's own ``__eq__`` (or an unhashable one) must
        # not decide which backend events go to.
        return self.on_error is other.on_error and all(
            getattr(self, f.name) == getattr(other, f.name)
            for f in dataclasses.fields(self)
            if f.compare
        )

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
        values = read_options(config, environ)
        hook = config.get("AFFY_ON_ERROR")  # a callable: config only, never the environment
        if hook is not None:
            values["on_error"] = hook
        unknown = set(overrides) - set(OPTIONS) - {"on_error"}
        if unknown:
            raise AffyConfigError(
                f"unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(OPTIONS)}"
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


_warned_inactive = False


def warn_if_inactive(settings: Settings) -> None:
    """Log, once per process, why tracking is off when it is off for lack of a client id."""
    global _warned_inactive
    if settings.enabled and settings.client_id is None and not _warned_inactive:
        _warned_inactive = True
        logger.warning(
            "affy_middleware: AFFY_CLIENT_ID is not set, tracking is off. "
            "Set it to your numeric AFFY client id to turn tracking on.",
            extra=log_fields(reason="no_client_id"),
        )
