"""The sandbox's SQLite storage: accepted events, attribution links, the request log."""

from __future__ import annotations

import collections
import sqlite3
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ._rows import COLUMNS, SCHEMA, SESSION_LEADS, Accepted, AffiliateRow, event_of

__all__ = ["Store", "Accepted", "AffiliateRow"]

#: Requests kept in the in-memory request log (oldest dropped first).
REQUEST_LOG_SIZE = 200_000


class Store:
    """Thread-safe storage over one SQLite connection (``":memory:"`` or a file)."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path or ":memory:"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        except sqlite3.Error:  # not a database, or read-only: the caller reports which file
            self._db.close()
            raise
        self._requests: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=REQUEST_LOG_SIZE
        )
        self._duplicates = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writes -------------------------------------------------------------------------

    def record(
        self,
        kind: str,
        *,
        idempotency_key: str | None,
        body: str,
        affiliate_reference: str | None = None,
        session_id: str | None = None,
        click_id: str | None = None,
        lead_value: Decimal | None = None,
        respond: Callable[[int], str],
    ) -> Accepted:
        """Insert one accepted call, unless its key (or, for a click, its click id) is known.

        ``respond(event_id) -> str`` builds the response body once the row id is known; a
        duplicate gets the original response back and adds no row.
        """
        with self._lock:
            previous = self._find_duplicate(kind, idempotency_key, click_id)
            if previous is not None:
                self._duplicates += 1
                return Accepted(previous[0], previous[1], duplicate=True)
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._db.execute(
                    "INSERT INTO events (kind, idempotency_key, body, received_at, "
                    "affiliate_reference, session_id, click_id, lead_value, response) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, '')",
                    (
                        kind,
                        idempotency_key,
                        body,
                        time.time(),
                        affiliate_reference,
                        session_id,
                        click_id,
                        None if lead_value is None else str(lead_value),
                    ),
                )
                event_id = int(cursor.lastrowid or 0)
                response = respond(event_id)
                self._db.execute(
                    "UPDATE events SET response = ? WHERE id = ?", (response, event_id)
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return Accepted(event_id, response, duplicate=False)

    def _find_duplicate(
        self, kind: str, idempotency_key: str | None, click_id: str | None
    ) -> tuple[int, str] | None:
        if idempotency_key is not None:
            row = self._db.execute(
                "SELECT id, response FROM events WHERE idempotency_key = ?", (idempotency_key,)
            ).fetchone()
            if row is not None:
                return int(row[0]), str(row[1])
        if kind == "click" and click_id is not None:
            row = self._db.execute(
                "SELECT id, response FROM events WHERE kind = 'click' AND click_id = ?",
                (click_id,),
            ).fetchone()
            if row is not None:
                return int(row[0]), str(row[1])
        return None

    def log_request(
        self, method: str, path: str, status: int, idempotency_key: str | None, duplicate: bool
    ) -> None:
        entry = {
            "method": method,
            "path": path,
            "status": status,
            "idempotency_key": idempotency_key,
            "duplicate": duplicate,
            "time": time.time(),
        }
        with self._lock:
            self._requests.append(entry)

    def reset(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM events")
            self._requests.clear()
            self._duplicates = 0

    # -- reads --------------------------------------------------------------------------

    def find_click(self, click_id: str | int) -> dict[str, Any] | None:
        """A click by our string click id, or by AFFY's integer id."""
        column = "id" if isinstance(click_id, int) else "click_id"
        return self._one(
            f"SELECT {COLUMNS} FROM events WHERE kind = 'click' AND {column} = ?", (click_id,)
        )

    def latest_click(self, session_id: str) -> dict[str, Any] | None:
        return self._one(
            f"SELECT {COLUMNS} FROM events WHERE kind = 'click' AND session_id = ? "
            "ORDER BY id DESC LIMIT 1",
            (session_id,),
        )

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Accepted events, oldest first, each with its body decoded (Decimal kept exact)."""
        query = f"SELECT {COLUMNS} FROM events"
        params: tuple[Any, ...] = ()
        if kind is not None:
            query += " WHERE kind = ?"
            params = (kind,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY id", params).fetchall()
        return [event_of(row) for row in rows]

    def latest_events(self, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {COLUMNS} FROM events ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [event_of(row) for row in rows]

    def unattributed(self) -> int:
        """Session leads recorded without an affiliate (no click for their session)."""
        marks = ",".join("?" * len(SESSION_LEADS))
        with self._lock:
            row = self._db.execute(
                f"SELECT COUNT(*) FROM events WHERE kind IN ({marks})"
                " AND affiliate_reference IS NULL",
                SESSION_LEADS,
            ).fetchone()
        return int(row[0])

    def counts(self) -> tuple[int, int]:
        """(accepted events, logged requests)."""
        with self._lock:
            events = int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
            return events, len(self._requests)

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._requests]

    def duplicates(self) -> int:
        with self._lock:
            return self._duplicates

    def affiliates(self) -> list[AffiliateRow]:
        """Clicks, registrations, payments and revenue per affiliate (unattributed last)."""
        with self._lock:
            counts = self._db.execute(
                "SELECT COALESCE(affiliate_reference, ''), kind, COUNT(*) FROM events GROUP BY 1, 2"
            ).fetchall()
            values = self._db.execute(
                "SELECT COALESCE(affiliate_reference, ''), lead_value FROM events "
                "WHERE kind = 'payment'"
            ).fetchall()
            clients = self._db.execute(
                "SELECT DISTINCT COALESCE(affiliate_reference, ''), "
                "json_extract(body, '$.clientId') FROM events "
                "WHERE json_type(body, '$.clientId') = 'integer' ORDER BY 2"
            ).fetchall()
        table: dict[str, dict[str, int]] = collections.defaultdict(dict)
        for affiliate, kind, count in counts:
            table[affiliate][kind] = int(count)
        client_ids: dict[str, list[int]] = collections.defaultdict(list)
        for affiliate, client_id in clients:
            client_ids[affiliate].append(int(client_id))
        revenue: dict[str, Decimal] = collections.defaultdict(Decimal)
        for affiliate, value in values:
            revenue[affiliate] += Decimal(value or "0")
        rows = [
            AffiliateRow(
                affiliate_reference=affiliate,
                clicks=kinds.get("click", 0),
                registrations=kinds.get("registration", 0) + kinds.get("registration_lead", 0),
                payments=kinds.get("payment", 0),
                revenue=revenue[affiliate],
                client_ids=tuple(client_ids[affiliate]),
            )
            for affiliate, kinds in table.items()
        ]
        rows.sort(key=lambda row: (row.affiliate_reference == "", row.affiliate_reference))
        return rows

    def _one(self, query: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(query, params).fetchone()
        return None if row is None else event_of(row)

