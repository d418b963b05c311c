"""One process's connection to the PostgreSQL outbox: reconnects, bounded waits, and
driver errors turned into :class:`OutboxError` with the URL's password taken out.

A lost server is reconnected to at most every ``RECONNECT_INTERVAL`` seconds, failing
fast in between (a request thread never waits on a dead server twice in a row), and a
thread waits for the shared connection at most ``wait`` seconds.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .. import OutboxError
from .schema import PG_SCHEMA, redact_url, scrub

try:  # an optional extra: affy_middleware[postgres]
    import psycopg
except ImportError:  # pragma: no cover - said at open time
    psycopg = None  # type: ignore[assignment]

__all__ = ["DEFAULT_WAIT", "PgConnection", "RECONNECT_INTERVAL"]

R = TypeVar("R")

#: Seconds between two attempts to reach a server that was unreachable.
RECONNECT_INTERVAL = 2.0
#: Seconds a connection attempt, a statement or a wait for the connection may take.
DEFAULT_WAIT = 2.0
#: Any number, as long as every process agrees: serialises the first CREATE TABLEs.
_SCHEMA_LOCK = 0x_AFF1_0B0C


class PgConnection:
    """``run(work)`` calls ``work(connection)`` under a lock, (re)connecting first."""

    def __init__(self, url: str, *, wait: float = DEFAULT_WAIT) -> None:
        self._url = url
        #: The URL without its password: what messages and reprs show.
        self.location = redact_url(url)
        self._wait = wait
        self._lock = threading.Lock()
        self._conn: Any = None
        self._retry_at = 0.0
        self._pid = os.getpid()

    def __repr__(self) -> str:
        return f"PgConnection({self.location!r})"

    def _connect(self) -> Any:
        if psycopg is None:
            raise OutboxError(
                "a postgresql:// outbox needs psycopg: pip install 'affy_middleware[postgres]'"
            )
        if time.monotonic() < self._retry_at:
            raise OutboxError(f"PostgreSQL at {self.location} is unreachable (retrying soon)")
        try:
            conn = psycopg.connect(
                self._url,
                autocommit=True,
                connect_timeout=max(2, int(self._wait)),  # libpq's minimum is 2 s
                application_name="affy_middleware",
            )
            try:  # a SET, not a startup option: poolers (PgBouncer) refuse those
                conn.execute(
                    "SELECT set_config('statement_timeout', %s, false)",
                    (f"{int(self._wait * 1000)}ms",),
                )
            except BaseException:
                conn.close()
                raise
            return conn
        except psycopg.Error as exc:
            self._retry_at = time.monotonic() + RECONNECT_INTERVAL
            raise OutboxError(
                f"cannot reach PostgreSQL at {self.location}: {scrub(str(exc), self._url)}"
            ) from None

    def run(self, work: Callable[[Any], R]) -> R:
        """``work(connection)`` under the lock; driver errors become OutboxError."""
        if self._pid != os.getpid():
            # Forked (uWSGI may skip at-fork hooks): the inherited connection is the
            # parent's session, and the lock may have been held at the fork. Both anew;
            # psycopg itself never closes a connection in a process that did not open it.
            self._conn, self._lock, self._pid = None, threading.Lock(), os.getpid()
        if not self._lock.acquire(timeout=self._wait):
            raise OutboxError(f"PostgreSQL at {self.location}: busy for {self._wait} s")
        try:
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
            try:
                return work(self._conn)
            except psycopg.Error as exc:
                if self._conn.closed or isinstance(exc, psycopg.OperationalError):
                    with contextlib.suppress(psycopg.Error):
                        self._conn.close()
                    self._conn = None  # reconnect next time
                raise OutboxError(
                    f"PostgreSQL at {self.location}: {scrub(str(exc), self._url)}"
                ) from None
        finally:
            self._lock.release()

    def create_tables(self, conn: Any) -> None:
        """Create the tables if missing (``affy outbox init``); OutboxError if we may not."""
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                conn.execute(PG_SCHEMA)
        except psycopg.Error as exc:
            raise OutboxError(
                f"the outbox tables are missing in {self.location} and cannot be created"
                f" ({scrub(str(exc), self._url)}): run `affy outbox init`, or apply"
                " `affy outbox init --sql` as the database owner"
            ) from None

    def ensure_tables(self, conn: Any) -> None:
        """Create the tables when missing (first use)."""
        exists = conn.execute(
            "SELECT to_regclass('affy_outbox') IS NOT NULL"
            " AND to_regclass('affy_outbox_dead') IS NOT NULL"
        ).fetchone()[0]
        if not exists:
            self.create_tables(conn)

    def close(self) -> None:
        if self._pid != os.getpid():
            self._conn = None  # the parent's: not ours to close
            return
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None

