"""``affy outbox`` on the SQLite file: its own connection to the file the processes share.

Reads the columns the file has (``PRAGMA table_info``) rather than assuming them, so it
works with files written by earlier versions (no ``order_key`` or ``kind`` column: the
kind is then read from the stored record).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from .. import OutboxError
from ..admin import DeadLetter, OutboxAdmin, OutboxStatus, kind_of
from . import schema

__all__ = ["SqliteAdmin"]

# Made here only when the file has no dead letters table yet (the same columns as
# PostgreSQL's, times in epoch seconds).
_DEAD = """
CREATE TABLE IF NOT EXISTS affy_outbox_dead (
    event_id TEXT PRIMARY KEY, order_key TEXT, kind TEXT, record BLOB NOT NULL,
    created_at REAL NOT NULL, reason TEXT NOT NULL, answer TEXT, buried_at REAL NOT NULL
)
"""
_TIME_COLUMNS = ("buried_at", "dead_at", "failed_at")


class SqliteAdmin(OutboxAdmin):
    def __init__(self, path: str, *, create: bool = False) -> None:
        """``create`` (``affy outbox init``): make the file and its tables, as the first
        event would; else a missing file is an error."""
        self.location = path
        if create:
            try:
                schema.connect(path, 10_000).close()  # the store's own tables, WAL mode
            except (OSError, sqlite3.Error) as exc:
                raise OutboxError(f"cannot create {path}: {exc}") from None
        elif not os.path.exists(path):
            raise OutboxError(
                f"no outbox file at {path} (made by the first event, or `affy outbox init`)"
            )
        try:
            self._db = sqlite3.connect(path, timeout=10, isolation_level=None)
            self._db.execute("PRAGMA busy_timeout=10000")
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot open {path}: {exc}") from None

    def _columns(self, table: str) -> set[str]:
        return {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}

    def _sql(self, query: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(query, params).fetchall()
        except sqlite3.Error as exc:
            raise OutboxError(f"{self.location}: {exc}") from None

    def init(self) -> None:
        try:
            self._db.execute(_DEAD)
        except sqlite3.Error as exc:
            raise OutboxError(f"{self.location}: {exc}") from None

    def _dead_time(self) -> str:
        columns = self._columns("affy_outbox_dead")
        return next((c for c in _TIME_COLUMNS if c in columns), "created_at")

    def status(self) -> OutboxStatus:
        self.init()
        status = OutboxStatus()
        now = time.time()
        rows = self._sql(
            "SELECT record, owner_token IS NOT NULL AND lease_until >= ?, created_at"
            " FROM affy_outbox",
            (now,),
        )
        for record, leased, _ in rows:
            status.add(kind_of(record), "leased" if leased else "pending", 1)
        if rows:
            status.oldest_age = max(0.0, now - min(float(r[2]) for r in rows))
        for record, reason in self._sql("SELECT record, reason FROM affy_outbox_dead"):
            status.add(kind_of(record), "dead", 1)
            key = str(reason)
            status.dead_by_reason[key] = status.dead_by_reason.get(key, 0) + 1
        return status

    def dead(self, limit: int) -> list[DeadLetter]:
        self.init()
        at = self._dead_time()
        answer = "answer" if "answer" in self._columns("affy_outbox_dead") else "NULL"
        rows = self._sql(
            f"SELECT event_id, record, reason, {answer}, {at} FROM affy_outbox_dead"
            f" ORDER BY {at} DESC, event_id LIMIT ?",
            (limit,),
        )
        return [
            DeadLetter(
                str(e),
                kind_of(r),
                str(why),
                None if a is None else str(a),
                None if t is None else float(t),
            )
            for e, r, why, a, t in rows
        ]

    def retry(self, event_ids: Sequence[str] | None) -> int:
        self.init()
        outbox = self._columns("affy_outbox")
        dead = self._columns("affy_outbox_dead")
        wanted = ("event_id", "record", "created_at", "order_key", "kind")
        shared = [c for c in wanted if c in outbox and c in dead]
        names = ", ".join(shared)
        where = "1"
        params_t: tuple[str, ...] = ()
        if event_ids is not None:
            where = f"event_id IN ({','.join('?' * len(event_ids))})" if event_ids else "0"
            params_t = tuple(event_ids)
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                moved = self._db.execute(
                    f"INSERT OR IGNORE INTO affy_outbox ({names}) SELECT {names}"
                    f" FROM affy_outbox_dead WHERE {where} ORDER BY {self._dead_time()}",
                    params_t,
                ).rowcount
                self._db.execute(f"DELETE FROM affy_outbox_dead WHERE {where}", params_t)
                self._db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise OutboxError(f"{self.location}: {exc}") from None
        return int(moved)

    def purge(self, older_than: float) -> int:
        self.init()
        try:
            cursor = self._db.execute(
                f"DELETE FROM affy_outbox_dead WHERE {self._dead_time()} < ?",
                (time.time() - older_than,),
            )
        except sqlite3.Error as exc:
            raise OutboxError(f"{self.location}: {exc}") from None
        return cursor.rowcount

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
