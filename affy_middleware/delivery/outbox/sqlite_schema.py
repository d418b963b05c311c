"""The SQLite outbox's tables, and bringing a file written by an older version up to date.

``affy_outbox`` holds pending rows; ``order_key`` (the visit) lets ``claim`` hand out only
the oldest row of each visit. ``affy_outbox_dead`` holds the dead letters: rows AFFY
refused for good and rows that could not be decoded, with the reason and AFFY's answer.
"""

from __future__ import annotations

import contextlib
import sqlite3

__all__ = ["create_tables"]

_TABLES = """
CREATE TABLE IF NOT EXISTS affy_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    record BLOB NOT NULL,
    created_at REAL NOT NULL,
    owner_host TEXT,
    owner_pid INTEGER,
    owner_token TEXT,
    lease_until REAL NOT NULL DEFAULT 0,
    order_key TEXT
);
CREATE TABLE IF NOT EXISTS affy_outbox_dead (
    event_id TEXT NOT NULL,
    record BLOB,
    created_at REAL,
    order_key TEXT,
    reason TEXT NOT NULL,
    answer TEXT,
    buried_at REAL NOT NULL
);
"""

_INDEXES = """
CREATE INDEX IF NOT EXISTS affy_outbox_owner ON affy_outbox (owner_token);
CREATE INDEX IF NOT EXISTS affy_outbox_pid ON affy_outbox (owner_host, owner_pid);
CREATE INDEX IF NOT EXISTS affy_outbox_visit ON affy_outbox (order_key, seq);
"""


def _has_order_key(db: sqlite3.Connection) -> bool:
    return any(row[1] == "order_key" for row in db.execute("PRAGMA table_info(affy_outbox)"))


def create_tables(db: sqlite3.Connection) -> None:
    """Create what is missing; a file from before visit order gets its ``order_key``
    column, filled from each row's record (unreadable records keep NULL: free rows)."""
    db.executescript(_TABLES)
    if not _has_order_key(db):
        db.execute("BEGIN IMMEDIATE")  # another process may be migrating the same file
        try:
            if not _has_order_key(db):
                db.execute("ALTER TABLE affy_outbox ADD COLUMN order_key TEXT")
                db.execute(
                    "UPDATE affy_outbox SET order_key = json_extract(record, '$.orderKey')"
                    " WHERE json_valid(record)"
                )
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
    db.executescript(_INDEXES)
