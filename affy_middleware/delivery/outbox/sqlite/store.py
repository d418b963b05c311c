"""The SQLite outbox (``AFFY_SPOOL_PATH``): events survive crashes, deploys and outages.

Every event is written here before ``enqueue`` returns and deleted only once AFFY accepted
it (or refused it for good with a 4xx). Several processes may share one file: a process
*claims* the rows it is going to send by writing its identity and a lease expiry into them,
inside one ``BEGIN IMMEDIATE`` transaction, so two processes never claim the same row. A
live process renews its leases; rows of a process that died are claimable at once when it
ran on this host (its pid no longer exists), and by anyone once their lease expires.

Durability: WAL with ``synchronous=NORMAL`` survives a killed process (the case that
matters here), not necessarily a power cut of the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable

from ...._wire import Event
from .. import DEFAULT_LEASE, Outbox, OutboxBusy, OutboxError
from ..owners import host_identity
from . import claims as sqlite_claims
from .claims import bury_row, claimable, dead_owners, register_owner, take_rows
from .schema import connect, wrapped

__all__ = ["SqliteOutbox"]

#: Milliseconds a writer waits for another process's write lock before giving up.
DEFAULT_BUSY_TIMEOUT_MS = 2000


class SqliteOutbox(Outbox):
    """One process's handle on the outbox file. Thread-safe; open a new one after fork::

    outbox = SqliteOutbox("/var/lib/app/affy.sqlite")
    outbox.put(event, claimed=False)
    outbox.claim(10)   # [event], leased to this process
    """

    def __init__(
        self,
        path: str,
        *,
        lease: float = DEFAULT_LEASE,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    ) -> None:
        self.path = path
        self.lease = lease
        self.host = host_identity()
        self.pid = os.getpid()
        self.token = uuid.uuid4().hex
        #: When every row this handle holds was last known to be leased (time.time()).
        self.renewed_at = time.time()
        self._lock = threading.Lock()
        self._busy_ms = int(busy_timeout_ms)
        self._malformed: list[Event] = []  # buried by claim, not yet taken (take_malformed)
        #: The rows this handle leased (``put``, ``claim``) and has not let go of since:
        #: the only ones ``renew`` extends. Changed under ``_lock``.
        self._held: set[str] = set()
        self._read_lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None  # for states(), opened at first use
        try:
            self._db = connect(path, busy_timeout_ms)
        except (sqlite3.Error, OSError) as exc:
            raise OutboxError(str(exc)) from exc
        try:  # who we are, so that our rows are taken over at once if we die
            register_owner(self._db, self.token, self.host, self.pid)
        except sqlite3.Error as exc:
            self._db.close()
            raise OutboxError(str(exc)) from exc

    # -- writing ----------------------------------------------------------------------

    @wrapped
    def put(self, event: Event, *, claimed: bool) -> bool:
        """Store an event; whether its row is leased to this process. ``claimed`` asks
        for the lease (this process holds the event in memory): granted unless an
        earlier row of the visit waits unclaimed or is held by another process."""
        record, key = event.to_record(), event.order_key
        bound = self._busy_ms / 1000
        deadline = time.monotonic() + bound
        # A deadline for the whole call, not per step: threads queued on our lock would
        # otherwise each wait for SQLite in turn (the k-th for k busy timeouts).
        if not self._lock.acquire(timeout=bound):
            raise OutboxBusy(f"other threads held the outbox for {bound:.1f} s")
        try:
            left_ms = int((deadline - time.monotonic()) * 1000)
            short = left_ms < self._busy_ms - 5
            if short:
                self._db.execute(f"PRAGMA busy_timeout={max(1, left_ms)}")
            try:
                mine = self._insert(event, record, key, claimed)
                if mine:
                    self._held.add(event.event_id)
                return mine
            finally:
                if short:
                    self._db.execute(f"PRAGMA busy_timeout={self._busy_ms}")
        finally:
            self._lock.release()

    def _insert(self, event: Event, record: bytes, key: str | None, claimed: bool) -> bool:
        """The write itself, under ``_lock``."""
        if not claimed:
            self._db.execute(
                "INSERT OR IGNORE INTO affy_outbox (event_id, record, created_at,"
                " order_key) VALUES (?, ?, ?, ?)",
                (event.event_id, record, event.created_at, key),
            )
            return False
        # One statement: the check and the insert see the same snapshot.
        row = self._db.execute(
            "INSERT OR IGNORE INTO affy_outbox (event_id, record, created_at, order_key,"
            " owner_host, owner_pid, owner_token, lease_until)"
            " SELECT ?, ?, ?, ?, IIF(b, NULL, ?), IIF(b, NULL, ?), IIF(b, NULL, ?),"
            " IIF(b, 0, ?) FROM (SELECT EXISTS (SELECT 1 FROM affy_outbox"
            " WHERE order_key = ? AND (owner_token IS NULL OR owner_token != ?)) AS b)"
            " WHERE true RETURNING owner_token",
            (
                event.event_id,
                record,
                event.created_at,
                key,
                self.host,
                self.pid,
                self.token,
                time.time() + self.lease,
                key,
                self.token,
            ),
        ).fetchone()
        return row is not None and row[0] == self.token

    @wrapped
    def bury(self, event_id: str, reason: str, answer: str | None = None) -> None:
        """Move a row to ``affy_outbox_dead`` with the reason and AFFY's answer."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                moved = bury_row(self._db, event_id, reason, answer)
                self._db.execute("COMMIT")
                self._held.discard(event_id)
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise
            self.dead_letters += moved

    @wrapped
    def delete(self, event_id: str) -> None:
        """AFFY accepted (or finally refused) the event: forget it."""
        with self._lock:
            self._db.execute("DELETE FROM affy_outbox WHERE event_id = ?", (event_id,))
            self._held.discard(event_id)

    @wrapped
    def release(self, event_ids: Iterable[str]) -> None:
        """Give rows back (at shutdown) so the next process may claim them at once."""
        ids = [(event_id, self.token) for event_id in event_ids]
        if not ids:
            return
        with self._lock:
            self._db.executemany(
                "UPDATE affy_outbox SET owner_host = NULL, owner_pid = NULL,"
                " owner_token = NULL, lease_until = 0 WHERE event_id = ? AND owner_token = ?",
                ids,
            )
            self._held.difference_update(event_id for event_id, _ in ids)

    def release_all(self) -> None:
        with self._lock:
            held = list(self._held)
        self.release(held)

    @wrapped
    def renew(self) -> int:
        """Extend the lease of every row this handle holds; returns how many."""
        now = time.time()
        with self._lock:
            cursor = self._db.execute(
                "UPDATE affy_outbox SET lease_until = ? WHERE owner_token = ?"
                " AND event_id IN (SELECT value FROM json_each(?))",
                (now + self.lease, self.token, json.dumps(sorted(self._held))),
            )
            self.renewed_at = now
            return cursor.rowcount

    def holds(self, event_id: str) -> bool:
        if self.lease_safe():
            return True
        try:  # our lease renewal ran late (a frozen process): check before sending
            return self.reclaim(event_id)
        except OutboxError:
            return True  # cannot tell: sending twice is safer than never (AFFY dedupes)

    def lease_safe(self) -> bool:
        """Whether our leases are surely still valid (renewed recently enough)."""
        return time.time() < self.renewed_at + self.lease * 0.75

    @wrapped
    def reclaim(self, event_id: str) -> bool:
        """Renew our lease on one row if it is still ours; False when another process
        took it over meanwhile (after our renewal ran late). One atomic statement."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE affy_outbox SET lease_until = ? WHERE event_id = ? AND owner_token = ?",
                (time.time() + self.lease, event_id, self.token),
            )
            return cursor.rowcount == 1

    @wrapped
    def claim(self, limit: int) -> list[Event]:
        """Lease up to ``limit`` rows nobody holds (unclaimed, lease expired, or held by a
        dead process on this host), oldest first and each the oldest of its visit, and
        return their events. Rows that do not decode are buried, not leased."""
        if limit <= 0:
            return []
        now = time.time()
        with self._lock:
            dead = dead_owners(self._db, self.host, self.token, now)
            if not dead and not claimable(self._db, self.token, now):
                return []  # the common case, without taking the write lock
            self._db.execute("BEGIN IMMEDIATE")
            try:
                owner = (self.host, self.pid, self.token)
                events, buried = take_rows(self._db, owner, now, self.lease, limit, dead)
                self._db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise
            self.dead_letters += len(buried)
            self._malformed += buried  # told once the transaction is committed
            self._held.update(event.event_id for event in events)
        return events

    def take_malformed(self) -> list[Event]:
        with self._lock:
            taken, self._malformed = self._malformed, []
            return taken

    # -- reading ----------------------------------------------------------------------

    @wrapped
    def count(self) -> int:
        """Rows pending in the outbox, whoever holds them (not the dead letters)."""
        with self._lock:
            (n,) = self._db.execute("SELECT COUNT(*) FROM affy_outbox").fetchone()
            return int(n)

    @wrapped
    def states(self) -> dict[str, int]:
        with self._read_lock:  # not ``_lock``: a big outbox's scan must not hold up a put
            if self._reader is None:
                self._reader = sqlite_claims.reader(self.path, self._busy_ms)
            return sqlite_claims.states(self._reader, time.time())

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.close()
        with self._read_lock, contextlib.suppress(sqlite3.Error):
            if self._reader is not None:
                self._reader.close()
