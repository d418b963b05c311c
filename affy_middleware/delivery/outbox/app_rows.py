"""Outbox rows written by the app itself, through its own database connection.

When the outbox is the app's own database, a conversion's row can be written in the app's
transaction: it commits with the signup and vanishes with a rollback, so there is no
moment where one exists without the other. This module knows the stores' side of that:
where an outbox is (:class:`Address`), the one statement that writes a row nobody holds
(any process's keeper or ``affy relay`` then claims it like any other), and, for
PostgreSQL, which server and database a URL reaches (:func:`server_identity`), so an
integration can tell whether its connection reaches the same one. The integration (e.g.
``affy_middleware.django``) runs the statement on its connection; nothing here imports a
framework.
"""

from __future__ import annotations

import os

from ..._wire import Event
from . import OutboxError
from .address import Address, Dialect, address
from .postgres import schema as pg_schema
from .sqlite import schema as sqlite_schema

__all__ = ["IDENTITY_SQL", "Address", "address", "insert", "same_sqlite_file", "server_identity"]

#: What tells one PostgreSQL database apart from every other: the database, the schema
#: unqualified names go to, and the server (its port and start time, to the microsecond).
#: Read through both connections: equal answers mean the same tables.
IDENTITY_SQL = (
    "SELECT current_database(), current_schema(), current_setting('port'),"
    " pg_postmaster_start_time()::text"
)


def insert(dialect: Dialect, event: Event) -> tuple[str, tuple[object, ...]]:
    """The statement (DB-API ``format`` placeholders, as Django's cursors take) and its
    parameters that store ``event`` as a row nobody holds. A row already there (the same
    event id) is left alone."""
    record, key = event.to_record(), event.order_key
    if dialect == "postgresql":
        return pg_schema.APP_INSERT, (event.event_id, key, event.kind, record, event.created_at)
    return sqlite_schema.APP_INSERT, (event.event_id, record, event.created_at, key)


def server_identity(url: str, *, wait: float = 2.0) -> tuple[object, ...]:
    """:data:`IDENTITY_SQL`'s answer through a short-lived connection to ``url``. Raises
    OutboxError (without the password) when it cannot be read."""
    from .postgres.connection import PgConnection

    db = PgConnection(url, wait=wait)
    try:
        row = db.run(lambda conn: conn.execute(IDENTITY_SQL).fetchone())
    finally:
        db.close()
    if row is None:  # pragma: no cover - a SELECT without FROM returns one row
        raise OutboxError("no answer to the identity query")
    return tuple(row)


def same_sqlite_file(spool_path: str, database: str) -> bool:
    """Whether the SQLite database file ``database`` is the outbox file ``spool_path``
    (an in-memory or not-yet-created database never is)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return False
    try:
        return os.path.samefile(spool_path, database)
    except OSError:  # one of them does not exist (yet): not the same file
        return False
