"""``affy outbox`` on PostgreSQL: counts, dead letters, retry and purge, in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..admin import DeadLetter, OutboxAdmin, OutboxStatus
from .connection import PgConnection
from .tables import create_tables

__all__ = ["PostgresAdmin"]

# A retried row goes to the end of the line with a fresh seq; its event id (the
# Idempotency-Key) is the one it always had.
_RETRY = """
WITH moved AS (DELETE FROM affy_outbox_dead WHERE %(all)s OR event_id = ANY(%(ids)s)
               RETURNING event_id, order_key, kind, record, created_at, buried_at)
INSERT INTO affy_outbox (event_id, order_key, kind, record, created_at)
SELECT event_id, order_key, kind, record, created_at FROM moved ORDER BY buried_at
ON CONFLICT (event_id) DO NOTHING
"""


class PostgresAdmin(OutboxAdmin):
    def __init__(self, url: str) -> None:
        self._db = PgConnection(url, wait=10.0)
        self.location = self._db.location
        self._db.run(lambda conn: None)  # connect now: unreachable is said at once

    def init(self) -> None:
        self._db.run(lambda conn: create_tables(self._db, conn))

    def status(self) -> OutboxStatus:
        def read(conn: Any) -> OutboxStatus:
            status = OutboxStatus()
            for kind, leased, n in conn.execute(
                "SELECT kind, owner_token IS NOT NULL AND lease_until >= now(), count(*)"
                " FROM affy_outbox GROUP BY 1, 2"
            ):
                status.add(kind, "leased" if leased else "pending", n)
            for kind, reason, n in conn.execute(
                "SELECT kind, reason, count(*) FROM affy_outbox_dead GROUP BY 1, 2"
            ):
                status.add(kind, "dead", n)
                status.dead_by_reason[reason] = status.dead_by_reason.get(reason, 0) + n
            (oldest,) = conn.execute(
                "SELECT extract(epoch FROM now()) - min(created_at) FROM affy_outbox"
            ).fetchone()
            status.oldest_age = None if oldest is None else max(0.0, float(oldest))
            return status

        return self._db.run(read)

    def dead(self, limit: int) -> list[DeadLetter]:
        rows = self._db.run(
            lambda conn: conn.execute(
                "SELECT event_id, kind, reason, answer, extract(epoch FROM buried_at)"
                " FROM affy_outbox_dead ORDER BY buried_at DESC, event_id LIMIT %s",
                (limit,),
            ).fetchall()
        )
        return [DeadLetter(e, k, r, a, None if t is None else float(t)) for e, k, r, a, t in rows]

    def retry(self, event_ids: Sequence[str] | None) -> int:
        params = {"all": event_ids is None, "ids": list(event_ids or [])}
        n: int = self._db.run(lambda conn: conn.execute(_RETRY, params).rowcount)
        return n

    def purge(self, older_than: float) -> int:
        n: int = self._db.run(
            lambda conn: (
                conn.execute(
                    "DELETE FROM affy_outbox_dead"
                    " WHERE buried_at < now() - make_interval(secs => %s)",
                    (older_than,),
                ).rowcount
            )
        )
        return n

    def close(self) -> None:
        self._db.close()
