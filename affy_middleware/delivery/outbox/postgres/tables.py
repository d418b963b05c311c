"""Creating the PostgreSQL outbox's tables: on first use when missing, or by hand
(``affy outbox init``) as their owner when the app's user may not."""

from __future__ import annotations

from typing import Any

from .. import OutboxError
from .connection import PgConnection
from .schema import PG_SCHEMA

__all__ = ["create_tables", "ensure_tables"]

#: Any number, as long as every process agrees: serialises the first CREATE TABLEs.
_SCHEMA_LOCK = 0x_AFF1_0B0C


def create_tables(db: PgConnection, conn: Any) -> None:
    """Create the tables if missing (``affy outbox init``); OutboxError if we may not."""
    import psycopg

    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            conn.execute(PG_SCHEMA)
    except psycopg.Error as exc:
        raise OutboxError(
            f"the outbox tables are missing in {db.location} and cannot be created"
            f" ({db.scrub(exc)}): run `affy outbox init`, or apply"
            " `affy outbox init --sql` as the database owner"
        ) from None


def ensure_tables(db: PgConnection, conn: Any) -> None:
    """Create the tables when missing (first use)."""
    exists = conn.execute(
        "SELECT to_regclass('affy_outbox') IS NOT NULL"
        " AND to_regclass('affy_outbox_dead') IS NOT NULL"
    ).fetchone()[0]
    if not exists:
        create_tables(db, conn)
