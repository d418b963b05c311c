"""The SQLite outbox's connection and tables: errors become OutboxError, and a file
written by an older version is brought up to date.

``affy_outbox`` holds pending rows; ``order_key`` (the visit) lets ``claim`` hand out only
the oldest row of each visit. ``affy_outbox_dead`` holds the dead letters: rows AFFY
refused for good and rows that could not be decoded, with the reason and AFFY's answer.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from .. import OutboxBusy, OutboxError

__all__ = ["APP_INSERT", "connect", "create_tables", "wrapped"]

P = ParamSpec("P")
R = TypeVar("R")


# ``seq`` without AUTOINCREMENT, which would write ``sqlite_sequence`` on every insert
# (~4 µs of the request's write): a new row gets max + 1, after every row present, which
# is all the visit order needs.
_TABLES = """
CREATE TABLE IF NOT EXISTS affy_outbox (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    record BLOB NOT NULL,
    created_at REAL NOT NULL,
    owner_host TEXT,
    owner_pid INTEGER,
    owner_token TEXT,
    lease_until REAL NOT NULL DEFAULT 0,
    order_key TEXT
);
CREATE TABLE IF NOT EXISTS affy_outbox_owners (
    token TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    since REAL NOT NULL
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

# One index besides the event id's: each index costs a page write per event written
# (~4 µs). Owners live in their own table, a row per process, not an index entry per row.
_INDEXES = """
DROP INDEX IF EXISTS affy_outbox_owner;
DROP INDEX IF EXISTS affy_outbox_pid;
CREATE INDEX IF NOT EXISTS affy_outbox_visit ON affy_outbox (order_key, seq);
"""

#: Owners of rows written by an older version, which recorded them in the rows only.
_OLD_OWNERS = """
INSERT OR IGNORE INTO affy_outbox_owners (token, host, pid, since)
SELECT owner_token, MIN(owner_host), MIN(owner_pid), 0 FROM affy_outbox
WHERE owner_token IS NOT NULL AND owner_host IS NOT NULL AND owner_pid IS NOT NULL
GROUP BY owner_token
"""


#: A row nobody holds, written by the app through its own connection (``app_rows.py``);
#: ``format`` placeholders, as Django's cursors take (they turn them into ``?``).
APP_INSERT = (
    "INSERT OR IGNORE INTO affy_outbox (event_id, record, created_at, order_key)"
    " VALUES (%s, %s, %s, %s)"
)


def _up_to_date(db: sqlite3.Connection) -> bool:
    """Whether ``affy_outbox`` has visit order (else it was written by an older version)."""
    return any(row[1] == "order_key" for row in db.execute("PRAGMA table_info(affy_outbox)"))


def create_tables(db: sqlite3.Connection) -> None:
    """Create what is missing; a file from before visit order gets its ``order_key``
    column, filled from each row's record (unreadable records keep NULL: free rows)."""
    db.executescript(_TABLES)
    if not _up_to_date(db):
        db.execute("BEGIN IMMEDIATE")  # another process may be migrating the same file
        try:
            if not _up_to_date(db):
                db.execute("ALTER TABLE affy_outbox ADD COLUMN order_key TEXT")
                db.execute(
                    "UPDATE affy_outbox SET order_key = json_extract(record, '$.orderKey')"
                    " WHERE json_valid(record)"
                )
                db.execute(_OLD_OWNERS)
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
    db.executescript(_INDEXES)


def wrapped(method: Callable[P, R]) -> Callable[P, R]:
    """SQLite's errors become OutboxError: the backends know no driver."""

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            busy = "locked" in str(exc) or "busy" in str(exc)
            raise (OutboxBusy if busy else OutboxError)(str(exc)) from exc
        except sqlite3.Error as exc:
            raise OutboxError(str(exc)) from exc

    return call


def connect(path: str, busy_timeout_ms: int) -> sqlite3.Connection:
    """A connection in autocommit mode (explicit BEGIN IMMEDIATE for claims), WAL, the
    tables created or brought up to date."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    db = sqlite3.connect(
        path,
        timeout=busy_timeout_ms / 1000,
        isolation_level=None,  # autocommit; explicit BEGIN IMMEDIATE for claims
        check_same_thread=False,
    )
    try:
        db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        create_tables(db)
    except BaseException:  # e.g. locked by another process: retried with a new one
        db.close()
        raise
    return db
