"""The outbox row written in the app's own transaction, when the outbox is Django's database.

With ``AFFY_OUTBOX_URL`` naming the same PostgreSQL database as a ``DATABASES`` entry (or
``AFFY_SPOOL_PATH`` the same SQLite file), a conversion made inside an atomic block on that
connection is not handed over on commit: its row is inserted into ``affy_outbox`` through
Django's connection, in a savepoint of the app's transaction. It commits with the signup
and vanishes with a rollback, so no crash between the two can lose it or report a ghost.
After the commit, this process's lease keeper is woken to claim and send it (any relay
would, if this process died first).

"The same database" is asked of the servers, once per process and connection: both
connections read ``current_database()``, ``current_schema()``, the port and the server's
start time, and the answers must be equal. Anything else (another database, a failed
query, a missing table) falls back to the on-commit hand-over: never worse than before. A
server that cannot answer is asked again a minute later, not written off for good.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .. import delivery
from .._logging import log_fields
from ..conversions.handover import Conversion
from ..delivery.outbox import app_rows
from ..delivery.support.logs import logger

__all__ = ["write_in_transaction"]

#: Seconds before asking the servers again when one of them could not answer.
RETRY_AFTER = 60.0

_lock = threading.Lock()
# (alias, outbox address) -> whether they are the same database: asked once per process.
_same: dict[tuple[str, app_rows.Address], bool] = {}
_retry_at: dict[tuple[str, app_rows.Address], float] = {}
_warned = False


def write_in_transaction(conversion: Conversion, alias: str) -> bool:
    """Insert the conversion's outbox row through connection ``alias`` (inside its atomic
    block) and wake the relay on commit; False when this does not apply or failed, and
    nothing was written."""
    from django.db import connections, transaction

    backend = delivery.backend_for(conversion.settings)
    where = backend.app_outbox()
    if where is None:
        return False
    connection = connections[alias]
    if connection.needs_rollback:  # doomed (set_rollback, a failed query): on_commit drops it
        return False
    if not _is_same(alias, where, connection):
        return False
    sql, params = app_rows.insert(where.dialect, conversion.event)
    try:
        # A savepoint: a failed insert (e.g. the table not created yet) rolls back to it
        # and leaves the app's transaction as it was.
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            cursor.execute(sql, params)
    except Exception as exc:  # never into the app: it is handed over on commit instead
        _warn_once(alias, exc)
        return False
    transaction.on_commit(backend.rows_written, using=alias)
    return True


def _is_same(alias: str, where: app_rows.Address, connection: Any) -> bool:
    key = (alias, where)
    known = _same.get(key)
    if known is None:
        if time.monotonic() < _retry_at.get(key, 0.0):
            return False  # could not tell a moment ago: on commit meanwhile
        known = _compare(where, connection)
        with _lock:
            if known is None:
                _retry_at[key] = time.monotonic() + RETRY_AFTER
            else:
                _same[key] = known
    return bool(known)


def _compare(where: app_rows.Address, connection: Any) -> bool | None:
    """Whether they are the same database; None when it cannot be told now (a server
    unreachable: asked again after ``RETRY_AFTER``)."""
    from django.db import transaction

    if where.dialect == "sqlite":
        return connection.vendor == "sqlite" and app_rows.same_sqlite_file(
            where.location, str(connection.settings_dict.get("NAME") or "")
        )
    if connection.vendor != "postgresql":
        return False
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(app_rows.IDENTITY_SQL)
            ours = tuple(cursor.fetchone())
        return ours == app_rows.server_identity(where.location)
    except Exception as exc:  # OutboxError, or the app's driver
        _warn_once(connection.alias, exc)
        return None


def _warn_once(alias: str, exc: BaseException) -> None:
    global _warned
    if _warned:
        logger.debug("affy_middleware: outbox row not written in the transaction", exc_info=exc)
        return
    _warned = True
    logger.warning(
        "affy_middleware: cannot write the outbox row in the transaction of database %r "
        "(%s); conversions are handed over on commit instead",
        alias,
        type(exc).__name__,
        extra=log_fields(reason="outbox_in_transaction"),
    )


def forget() -> None:
    """Ask the servers again (settings or databases changed: tests)."""
    global _warned
    with _lock:
        _same.clear()
        _retry_at.clear()
        _warned = False
