"""The outbox: where events wait, durably, until AFFY accepted them.

:class:`Outbox` is the interface the delivery backends use; ``sqlite.py`` is the first
implementation (``AFFY_SPOOL_PATH``), ``keeper.py`` the thread that keeps its leases. A
store raises :class:`OutboxError` (never its driver's own errors), so a new store (e.g.
PostgreSQL) slots in here without touching the backends.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..._settings import Settings
from ..._wire import Event

if TYPE_CHECKING:
    from .admin import OutboxAdmin

__all__ = [
    "DEFAULT_LEASE",
    "MALFORMED",
    "Outbox",
    "OutboxBusy",
    "OutboxError",
    "OutboxUncertain",
    "STATES",
    "load_store",
    "open_admin",
    "open_outbox",
    "outbox_location",
]

#: Seconds a claim holds when not renewed (a live process renews every quarter of it).
DEFAULT_LEASE = 60.0
#: The dead-letter reason of a row that cannot be decoded into a valid event.
MALFORMED = "malformed"
#: The states ``Outbox.states`` counts rows by: waiting with no live lease on them, held
#: by a live lease (being sent by some process), moved to the dead letters.
STATES = ("pending", "leased", "dead")


class OutboxError(Exception):
    """The store could not be read or written (locked, full, unreachable...)."""


class OutboxBusy(OutboxError):
    """A write could not be done within the store's bound (another process holds the
    store, or this process's other threads are ahead in line)."""


class OutboxUncertain(OutboxError):
    """A write cut off after it was sent (our own deadline, a lost connection): the row
    may or may not be there. Its event is kept in memory; once that is done with, the
    row, if the store wrote it after all, is deleted (``GuardedOutbox.forget``)."""


class Outbox(ABC):
    """One process's handle on a shared, durable queue of events. Thread-safe; open a
    new one after fork. Rows are *claimed* by a process with a lease; a live process
    renews its leases, and rows of a dead one are claimable again."""

    #: Seconds a claim holds without renewal.
    lease: float = DEFAULT_LEASE
    #: Rows this handle moved to the dead letters (``bury``, and malformed rows met by
    #: ``claim``); read by the backend's ``stats()["dead_letters"]``.
    dead_letters: int = 0

    @abstractmethod
    def put(self, event: Event, *, claimed: bool) -> bool:
        """Store an event before ``submit`` returns, waiting at most the store's bound in
        all (else OutboxBusy), however many threads write at once; whether its row is leased to this
        process. ``claimed`` asks for the lease (the process holds the event in memory);
        it is granted only when no earlier row of the event's visit (``order_key``) is
        held by another process or by nobody, so a visit's order survives the outbox.
        Otherwise the row waits for ``claim``, like an unclaimed one."""

    @abstractmethod
    def claim(self, limit: int) -> list[Event]:
        """Lease up to ``limit`` rows nobody holds, oldest first, each the oldest row of
        its visit (``order_key``): no row is claimed while an earlier row of the same
        visit is in the outbox, pending or in flight in any process (rows without an
        order key are free). A row that cannot be decoded into a valid event is moved to
        the dead letters (``MALFORMED``) in the same transaction, never leased."""

    @abstractmethod
    def bury(self, event_id: str, reason: str, answer: str | None = None) -> None:
        """Move a row to the dead letters (table ``affy_outbox_dead``: the row's data,
        ``reason``, AFFY's ``answer`` if any, and when); counted in ``dead_letters``."""

    @abstractmethod
    def renew(self) -> int:
        """Extend the lease of every row this handle holds (leased by ``put`` or
        ``claim``, and not yet deleted, buried or released); how many. Only those: a row
        whose state the process lost is not renewed, so its lease runs out and another
        process takes it."""

    @abstractmethod
    def holds(self, event_id: str) -> bool:
        """Whether this process still holds the row, checked before sending it (renewing
        its lease if a renewal ran late); False when another process took it over."""

    @abstractmethod
    def delete(self, event_id: str) -> None:
        """AFFY accepted the event, or refused it for good: forget it."""

    @abstractmethod
    def release(self, event_ids: Iterable[str]) -> None:
        """Give rows back (at shutdown) so that another process may claim them at once."""

    @abstractmethod
    def release_all(self) -> None:
        """Give back every row this handle holds (a clean exit)."""

    @abstractmethod
    def count(self) -> int:
        """Rows pending in the outbox, whoever holds them (not the dead letters)."""

    def states(self) -> dict[str, int]:
        """Rows by state (``STATES``), whoever holds them, in one read of the store: for
        ``stats()`` and the ``affy_outbox_events{state}`` gauge (a scrape, not a request).
        ``pending + leased`` is ``count()``. The default knows ``count()`` alone."""
        return {"pending": self.count(), "leased": 0, "dead": 0}

    def take_malformed(self) -> list[Event]:
        """The rows this handle buried as ``MALFORMED`` since the last call, each once, as
        stand-ins (``records.stand_in``: id, kind, order key, an empty body), for the
        backend to count and tell ``on_error``. A store that cannot meet such rows keeps
        this default."""
        return []

    def close(self) -> None:  # noqa: B027 (optional: a no-op by default)
        """Close the handle."""


# The stores' packages are imported where one is opened: a process with no outbox, or
# with SQLite, never imports psycopg's side (and the stores import this interface).


def load_store(settings: Settings) -> None:
    """Import the settings' store (and its driver) now, on the calling thread. A handle
    is then opened by a background thread; an import in progress there when the process
    forks (uWSGI's master, gunicorn ``--preload``) would leave its module lock held for
    ever in every child. Raises nothing: opening reports what is missing."""
    from .address import address

    where = address(settings)
    try:
        if where is not None and where.dialect == "postgresql":
            from .postgres import store  # noqa: F401  (psycopg with it)
        elif where is not None:
            from .sqlite import store as _sqlite  # noqa: F401
    except ImportError:
        return


def open_outbox(settings: Settings, *, lease: float = DEFAULT_LEASE) -> Outbox | None:
    """The outbox the settings name, or None. Raises OutboxError when it cannot be opened."""
    from .address import address

    where = address(settings)
    if where is None:
        return None
    if where.dialect == "postgresql":
        from .postgres.store import PostgresOutbox

        return PostgresOutbox(where.location, lease=lease, wait=settings.outbox_timeout)
    from .sqlite.store import SqliteOutbox

    return SqliteOutbox(where.location, lease=lease)


def open_admin(settings: Settings, *, create: bool = False) -> OutboxAdmin:
    """The admin handle on the settings' outbox (``affy outbox ...``; ``create``: a
    SQLite file is made when missing, for ``init``). Raises OutboxError when they name
    none or it cannot be opened."""
    from .address import address

    where = address(settings)
    if where is None:
        raise OutboxError("no outbox is configured: set AFFY_OUTBOX_URL")
    if where.dialect == "postgresql":
        from .postgres.admin import PostgresAdmin

        return PostgresAdmin(where.location)
    from .sqlite.admin import SqliteAdmin

    return SqliteAdmin(where.location, create=create)


def outbox_location(settings: Settings) -> str | None:
    """Where the settings' outbox is, for messages (no password); None when none."""
    from .address import address

    where = address(settings)
    return None if where is None else where.shown
