"""What the SQLite outbox may claim: the oldest row of each visit, and whose rows are free.

Look-ups and the claim's and bury's statements, run under the handle's lock (``claim``
first asks ``claimable`` so the common case, nothing to claim, never takes the write
lock; ``take_rows`` and ``bury_row`` run inside the caller's transaction).
"""

from __future__ import annotations

import os
import sqlite3
import time

from ...._wire import Event
from .. import MALFORMED
from ..owners import pid_alive
from ..records import decode_record, stand_in

__all__ = [
    "HEAD_OF_VISIT",
    "bury_row",
    "claimable",
    "dead_owners",
    "forget_owners",
    "reader",
    "register_owner",
    "states",
    "take_rows",
]

#: A row is claimable only as the oldest row of its visit (``r`` is the row's alias).
HEAD_OF_VISIT = (
    " (r.order_key IS NULL OR NOT EXISTS (SELECT 1 FROM affy_outbox AS e"
    " WHERE e.order_key = r.order_key AND e.seq < r.seq))"
)


def claimable(db: sqlite3.Connection, token: str, now: float) -> bool:
    """Whether any row is free for the handle ``token`` (unclaimed, or its lease expired)
    and the oldest of its visit."""
    row = db.execute(
        "SELECT 1 FROM affy_outbox AS r WHERE (owner_token IS NULL OR"
        " (lease_until < ? AND owner_token != ?)) AND" + HEAD_OF_VISIT + " LIMIT 1",
        (now, token),
    ).fetchone()
    return row is not None


def reader(path: str, busy_timeout_ms: int) -> sqlite3.Connection:
    """A connection for ``states`` alone: its scan of every row (no index tells the leased
    rows apart; one per written row would cost each request's write) then never holds
    the handle's lock, and under WAL a reader never blocks a writer."""
    db = sqlite3.connect(
        path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
    )
    db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    return db


def states(db: sqlite3.Connection, now: float) -> dict[str, int]:
    """Rows by state (``outbox.STATES``), in one statement: one read per scrape."""
    total, leased, dead = db.execute(
        "SELECT (SELECT COUNT(*) FROM affy_outbox), (SELECT COUNT(*) FROM affy_outbox"
        " WHERE owner_token IS NOT NULL AND lease_until >= ?),"
        " (SELECT COUNT(*) FROM affy_outbox_dead)",
        (now,),
    ).fetchone()
    return {"pending": int(total) - int(leased), "leased": int(leased), "dead": int(dead)}


def register_owner(db: sqlite3.Connection, token: str, host: str, pid: int) -> None:
    """Record a handle's identity (``affy_outbox_owners``): its rows are taken over at once
    once its process is gone. One row per handle, not an index entry per event row."""
    db.execute(
        "INSERT OR REPLACE INTO affy_outbox_owners (token, host, pid, since) VALUES (?, ?, ?, ?)",
        (token, host, pid, time.time()),
    )


def dead_owners(db: sqlite3.Connection, host: str, token: str, now: float) -> list[str]:
    """Tokens of this host's handles whose process is gone (their rows are free now)."""
    owners = db.execute(
        "SELECT token, pid FROM affy_outbox_owners WHERE host = ? AND token != ?",
        (host, token),
    ).fetchall()
    me = os.getpid()
    return [
        str(owner)
        for owner, pid in owners
        if isinstance(pid, int) and pid != me and not pid_alive(pid)
    ]


def forget_owners(db: sqlite3.Connection, tokens: list[str]) -> None:
    """Forget dead handles that hold no row any more (inside the claim's transaction)."""
    marks = ",".join("?" * len(tokens))
    db.execute(
        f"DELETE FROM affy_outbox_owners WHERE token IN ({marks}) AND NOT EXISTS"
        " (SELECT 1 FROM affy_outbox WHERE owner_token = affy_outbox_owners.token)",
        tokens,
    )


def take_rows(
    db: sqlite3.Connection,
    owner: tuple[str, int, str],
    now: float,
    lease: float,
    limit: int,
    dead: list[str],
) -> tuple[list[Event], list[Event]]:
    """Inside the claim's transaction: lease up to ``limit`` free rows, each the oldest of
    its visit, to ``owner`` (host, pid, token), and bury the rows that do not decode.
    Returns the leased events and the buried rows' stand-ins (``records.stand_in``)."""
    host, pid, token = owner
    dead_clause = f" OR owner_token IN ({','.join('?' * len(dead))})" if dead else ""
    rows = db.execute(
        "SELECT seq, event_id, record, order_key, created_at FROM affy_outbox AS r"
        " WHERE (owner_token IS NULL OR lease_until < ?" + dead_clause + ")"
        # Our own rows are in our memory already, even if a renewal ran late.
        " AND (owner_token IS NULL OR owner_token != ?) AND"
        + HEAD_OF_VISIT
        + " ORDER BY seq LIMIT ?",
        (now, *dead, token, limit),
    ).fetchall()
    events, leased, buried = [], [], []
    for seq, event_id, record, key, created in rows:
        try:
            events.append(decode_record(record))
            leased.append(seq)
        except ValueError as exc:
            if bury_row(db, str(event_id), MALFORMED, str(exc)):
                buried.append(stand_in(event_id, None, key, created, record))
    db.executemany(
        "UPDATE affy_outbox SET owner_host = ?, owner_pid = ?, owner_token = ?,"
        " lease_until = ? WHERE seq = ?",
        [(host, pid, token, now + lease, seq) for seq in leased],
    )
    if dead:
        forget_owners(db, dead)
    return events, buried


def bury_row(db: sqlite3.Connection, event_id: str, reason: str, answer: str | None) -> int:
    """Move a row to ``affy_outbox_dead`` (inside the caller's transaction); how many moved."""
    db.execute(
        "INSERT INTO affy_outbox_dead (event_id, record, created_at, order_key, reason,"
        " answer, buried_at) SELECT event_id, record, created_at, order_key, ?, ?, ?"
        " FROM affy_outbox WHERE event_id = ?",
        (reason, answer, time.time(), event_id),
    )
    return db.execute("DELETE FROM affy_outbox WHERE event_id = ?", (event_id,)).rowcount
