"""What the SQLite outbox may claim: the oldest row of each visit, and whose rows are free.

Read-only look-ups, run under the handle's lock (``claim`` first asks ``claimable`` so
the common case, nothing to claim, never takes the write lock).
"""

from __future__ import annotations

import os
import sqlite3

from .owners import pid_alive

__all__ = ["HEAD_OF_VISIT", "claimable", "dead_owners"]

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


def dead_owners(db: sqlite3.Connection, host: str, token: str, now: float) -> list[int]:
    """Pids of this host holding rows under a live lease whose process is gone."""
    pids = [
        pid
        for (pid,) in db.execute(
            "SELECT DISTINCT owner_pid FROM affy_outbox WHERE owner_host = ?"
            " AND owner_token != ? AND lease_until >= ?",
            (host, token, now),
        )
        if isinstance(pid, int)
    ]
    return [pid for pid in pids if pid != os.getpid() and not pid_alive(pid)]
