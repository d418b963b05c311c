"""What the SQLite outbox may claim: the oldest row of each visit, and whose rows are free.

Read-only look-ups, run under the handle's lock (``claim`` first asks ``claimable`` so
the common case, nothing to claim, never takes the write lock).
"""

from __future__ import annotations

import os
import sqlite3
import time

from .owners import pid_alive

__all__ = [
    "HEAD_OF_VISIT",
    "claimable",
    "dead_owners",
    "forget_owners",
    "register_owner",
    "states",
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
