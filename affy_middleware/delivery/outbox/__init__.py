"""The outbox: where events wait, durably, until AFFY accepted them.

:class:`Outbox` is the interface the delivery backends use; ``sqlite.py`` is the first
implementation (``AFFY_SPOOL_PATH``), ``keeper.py`` the thread that keeps its leases. A
store raises :class:`OutboxError` (never its driver's own errors), so a new store (e.g.
PostgreSQL) slots in here without touching the backends.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

from ..._settings import Settings
from ..._wire import Event
from .pg_schema import SCHEMES, redact_url

__all__ = ["DEFAULT_LEASE", "Outbox", "OutboxError", "open_outbox", "outbox_location"]

#: Seconds a claim holds when not renewed (a live process renews every quarter of it).
DEFAULT_LEASE = 60.0


class OutboxError(Exception):
    """The store could not be read or written (locked, full, unreachable...)."""


class Outbox(ABC):
    """One process's handle on a shared, durable queue of events. Thread-safe; open a
    new one after fork. Rows are *claimed* by a process with a lease; a live process
    renews its leases, and rows of a dead one are claimable again."""

    #: Seconds a claim holds without renewal.
    lease: float = DEFAULT_LEASE

    @abstractmethod
    def put(self, event: Event, *, claimed: bool) -> None:
        """Store an event before ``submit`` returns; ``claimed``: leased to this process
        (it holds the event in memory), else left for whoever has room."""

    @abstractmethod
    def claim(self, limit: int) -> list[Event]:
        """Lease up to ``limit`` rows nobody holds, oldest first (a visit's order)."""

    @abstractmethod
    def renew(self) -> int:
        """Extend the lease of every row this process holds; how many."""

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
    def count(self) -> int:
        """Rows in the outbox, whoever holds them."""

    def close(self) -> None:  # noqa: B027 (optional: a no-op by default)
        """Close the handle."""


def open_outbox(settings: Settings, *, lease: float = DEFAULT_LEASE) -> Outbox | None:
    """The outbox the settings name, or None. Raises OutboxError when it cannot be opened."""
    if settings.outbox_url is not None and settings.outbox_url.startswith(SCHEMES):
        from .postgres import PostgresOutbox

        return PostgresOutbox(settings.outbox_url, lease=lease)
    if settings.spool_path is None:
        return None
    from .sqlite import SqliteOutbox

    return SqliteOutbox(settings.spool_path, lease=lease)


def outbox_location(settings: Settings) -> str | None:
    """Where the settings' outbox is, for messages (no password); None when none."""
    if settings.outbox_url is not None and settings.outbox_url.startswith(SCHEMES):
        return redact_url(settings.outbox_url)
    return settings.spool_path
