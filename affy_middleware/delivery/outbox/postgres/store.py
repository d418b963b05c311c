"""The PostgreSQL outbox (``AFFY_OUTBOX_URL=postgresql://...``): one outbox for a fleet.

Every host writes its events into ``affy_outbox`` and any process relays: it claims due
rows with ``FOR UPDATE SKIP LOCKED`` and a lease (server time), renews while sending and
deletes on success. A row is claimable only while it is the oldest row of its visit
(``order_key``), so a lead is never claimed before its click is delivered, whichever host
wrote or relays them. Rows of a process that died on this host are claimable at once;
anyone's, once their lease expires.

Failures never reach a request: every driver error becomes :class:`OutboxError`, with the
URL's password taken out, and every wait bounded on our side (``connection.py``).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ...._wire import Event
from .. import DEFAULT_LEASE, MALFORMED, Outbox, OutboxError, OutboxUncertain
from ..batching import Batch
from ..owners import host_identity, pid_alive
from ..records import decode_record, stand_in
from .connection import DEFAULT_WAIT, STATEMENT_TIMEOUT, PgConnection
from .holdings import Holdings
from .schema import (
    BURY,
    CLAIM,
    COUNT,
    DELETE,
    OWNED,
    OWNERS_HERE,
    PUT,
    RELEASE,
    RELEASE_UNKNOWN,
    RENEW,
    RENEW_ONE,
    STATES,
)
from .tables import ensure_tables

__all__ = ["PostgresOutbox"]

R = TypeVar("R")


class PostgresOutbox(Outbox):
    """One process's handle on the shared outbox. Thread-safe; open a new one after fork::

        outbox = PostgresOutbox("postgresql://app:secret@db/app")
        outbox.put(event, claimed=False)
        outbox.claim(10)   # [event], leased to this process

    Raises OutboxError at once when the server cannot be reached or the tables are
    missing and cannot be created (naming the URL without its password)."""

    def __init__(
        self,
        url: str,
        *,
        lease: float = DEFAULT_LEASE,
        wait: float = DEFAULT_WAIT,
        statement_timeout: float = STATEMENT_TIMEOUT,
        create: bool = True,
    ) -> None:
        self._db = PgConnection(url, wait=wait, statement_timeout=statement_timeout)
        #: The URL without its password: what messages and reprs show.
        self.location = self._db.location
        self.lease = lease
        self.host = host_identity()
        self.pid = os.getpid()
        self.token = uuid.uuid4().hex
        self.rows = Holdings()
        self._malformed: list[Event] = []  # buried by claim, not yet taken (take_malformed)
        # Whether a claim was cut off after it was sent: it may have leased rows this
        # handle never saw, which would hold their visits back until their lease ran out;
        # the next claim gives them back first.
        self._orphans = False
        self._ids_lock = threading.Lock()  # dead_letters and _malformed
        self._deletes: Batch[str] = Batch(self._delete_rows)
        self.run(lambda conn: None)  # connect now: a wrong URL is a set-up error
        if create:
            self.run(lambda conn: ensure_tables(self._db, conn))

    def __repr__(self) -> str:
        return f"PostgresOutbox({self.location!r})"

    def run(self, work: Callable[[Any], R]) -> R:
        """``work(connection)`` off the request path: bounded by the statement timeout
        (``put``, on the request path, is bounded by ``wait``)."""
        return self._db.run(work, wait=self._db.background_wait)

    # -- writing ------------------------------------------------------------------------

    def put(self, event: Event, *, claimed: bool) -> bool:
        """Store an event; ``claimed`` rows are leased to this process (it holds them in
        memory), unclaimed ones wait for whoever has room. A ``claimed`` row whose visit
        has an earlier row another process holds or nobody holds yet is stored unclaimed
        instead (``holds`` then says False): it waits for its turn in the outbox, so a
        lead never overtakes its click across processes."""
        params = {
            "id": event.event_id,
            "key": event.order_key,
            "kind": event.kind,
            "record": event.to_record(),
            "created": event.created_at,
            "claim": claimed,
            "host": self.host,
            "pid": self.pid,
            "token": self.token,
            "lease": self.lease,
        }
        self.rows.writing(event.event_id)
        try:
            row = self._db.run(lambda conn: self._put(conn, params))
        except OutboxUncertain:
            raise  # (still "writing": its row may be ours, the event is in memory)
        except BaseException:
            self.rows.written(event.event_id)
            raise
        self.rows.written(event.event_id)
        mine = row is not None and bool(row[0])
        if mine:
            self.rows.hold([event.event_id])
        return mine

    @staticmethod
    def _put(conn: Any, params: dict[str, Any]) -> Any:
        row = conn.execute(PUT, params).fetchone()
        if row is None:
            # The row is there already: a write cut off by our own deadline (a frozen
            # server) that the server ran when it woke, leased to this handle or not.
            row = conn.execute(OWNED, params).fetchone()
        return row

    def delete(self, event_id: str) -> None:
        """AFFY accepted the event: forget it (with the rows other sender threads are
        deleting meanwhile: one statement for all, see ``batching.py``)."""
        self._deletes(event_id)

    def _delete_rows(self, ids: list[str]) -> None:
        self.run(
            lambda conn: conn.execute(DELETE, (ids,))
        )
        self.rows.forget(ids)

    def bury(self, event_id: str, reason: str, answer: str | None = None) -> None:
        """Move the row to the dead letters (``affy_outbox_dead``), with AFFY's answer."""
        self._bury(event_id, reason, answer)

    def _bury(self, event_id: str, reason: str, answer: str | None) -> bool:
        """``bury``; whether this handle moved the row (and counted it)."""
        params = {"id": event_id, "reason": reason, "answer": answer}
        moved: int = self.run(lambda conn: conn.execute(BURY, params).fetchone()[0])
        self.rows.forget([event_id])
        with self._ids_lock:
            self.dead_letters += moved
        return moved > 0

    def release(self, event_ids: Iterable[str]) -> None:
        """Give rows back (at shutdown) so that another process may claim them at once."""
        ids = list(event_ids)
        if ids:
            self.run(
                lambda conn: conn.execute(RELEASE, (ids, self.token))
            )
            self.rows.forget(ids)

    def release_all(self) -> None:
        self.release(self.rows.held_or_lost())

    # -- leases -------------------------------------------------------------------------

    def renew(self) -> int:
        """Extend the lease of every row this handle holds; how many. A row we held
        that is no longer ours was taken over while we were late: marked lost."""
        now = time.time()
        held = self.rows.held()
        if not held:
            self.rows.renewed([], set(), now)
            return 0
        renewed = self.run(
            lambda conn: {
                event_id
                for (event_id,) in conn.execute(RENEW, (self.lease, self.token, held))
            }
        )
        self.rows.renewed(held, renewed, now)
        return len(renewed)

    def holds(self, event_id: str) -> bool:
        if not self.rows.is_held(event_id):
            return False  # taken over, or never ours (waiting for its visit's turn)
        if time.time() < self.rows.renewed_at + self.lease * 0.75:
            return True  # our leases are surely valid: no round trip per send
        try:  # our renewal ran late (a frozen process): is the row still ours?
            held: bool = self.run(
                lambda conn: (
                    conn.execute(RENEW_ONE, (self.lease, event_id, self.token)).rowcount
                    == 1
                )
            )
        except OutboxError:
            return True  # cannot tell: sending twice is safer than never (AFFY dedupes)
        if not held:
            self.rows.lose(event_id)
        return held

    # -- claiming -----------------------------------------------------------------------

    def claim(self, limit: int) -> list[Event]:
        """Lease up to ``limit`` rows nobody holds, each the oldest row of its visit,
        oldest first. Rows that cannot be decoded are buried (reason ``malformed``)."""
        if limit <= 0:
            return []
        if self._orphans:
            self._release_orphans()
        try:
            rows = self.run(lambda conn: self._claim(conn, limit))
        except OutboxUncertain:
            self._orphans = True
            raise
        events = []
        for _, event_id, record, kind, key, created in sorted(rows):
            try:
                events.append(decode_record(bytes(record)))
            except ValueError as exc:
                if self._bury(event_id, MALFORMED, str(exc)):  # kept even if a later one fails
                    with self._ids_lock:
                        self._malformed.append(stand_in(event_id, kind, key, created, None))
        self.rows.hold(e.event_id for e in events)
        return events

    def _release_orphans(self) -> None:
        """Give back the rows leased to this handle that it does not know of (a claim cut
        off after the server ran it); raises OutboxError (tried again next claim)."""
        known = self.rows.known()
        self.run(lambda conn: conn.execute(RELEASE_UNKNOWN, (self.token, known)))
        self._orphans = False

    def take_malformed(self) -> list[Event]:
        with self._ids_lock:
            taken, self._malformed = self._malformed, []
            return taken

    def _claim(self, conn: Any, limit: int) -> list[tuple[int, str, bytes, str, str | None, float]]:
        pids = conn.execute(OWNERS_HERE, (self.host, self.token)).fetchall()
        dead = [p for (p,) in pids if isinstance(p, int) and p != self.pid and not pid_alive(p)]
        params = {
            "host": self.host,
            "pid": self.pid,
            "token": self.token,
            "lease": self.lease,
            "dead": dead,
            "limit": limit,
        }
        return list(conn.execute(CLAIM, params).fetchall())

    # -- reading ------------------------------------------------------------------------

    def count(self) -> int:
        """Rows in the outbox, whoever holds them."""
        n: int = self.run(
            lambda conn: conn.execute(COUNT).fetchone()[0]
        )
        return n

    def states(self) -> dict[str, int]:
        row = self.run(lambda conn: conn.execute(STATES).fetchone())
        return {"pending": int(row[0]), "leased": int(row[1]), "dead": int(row[2])}

    def close(self) -> None:
        self._db.close()
