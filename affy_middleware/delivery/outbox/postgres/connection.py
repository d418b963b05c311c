"""One process's connections to the PostgreSQL outbox, every wait bounded on our side.

``run(work)`` calls ``work(connection)`` on a connection of a small pool (``size``), with
every wait bounded by ``wait`` seconds (``AFFY_OUTBOX_TIMEOUT`` for the stores):

- waiting for a free connection: a condition, not a lock held across a database call;
- connecting: in a thread of its own, one at a time (libpq's ``connect_timeout`` cannot
  go below 2 s), which the caller waits for at most ``wait``; a late connection joins
  the pool for the next caller;
- a statement: a client-side deadline (``watchdog.py``) that a frozen server or a
  silent network cannot escape, plus the server's ``statement_timeout`` (the longer
  bound of work off the request path: a live server cancels such a statement itself
  and the connection stays), TCP keepalives and ``tcp_user_timeout``;
- after the server did not answer, or could not be reached, every call fails fast for
  ``RECONNECT_INTERVAL`` seconds: a request thread never waits on a dead server twice
  in a row. A connection lost with an error (a restart) is replaced at once.

Driver errors become :class:`OutboxError` with the URL's password taken out. A
hand-made pool rather than ``psycopg_pool``: its pool bounds the wait for a connection
and reconnects, but bounds no statement on a frozen server (the watchdog is needed
anyway), runs threads that a fork without hooks (uWSGI) leaves dead, and is one more
dependency; docs/deployment.md, "Database faults".
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .. import OutboxError, OutboxUncertain
from .schema import redact_url, scrub
from .watchdog import Guard, Watchdog

try:  # an optional extra: affy_middleware[postgres]
    import psycopg
except ImportError:  # pragma: no cover - said at open time
    psycopg = None  # type: ignore[assignment]

__all__ = [
    "DEFAULT_SIZE",
    "DEFAULT_WAIT",
    "PgConnection",
    "RECONNECT_INTERVAL",
    "STATEMENT_TIMEOUT",
]

R = TypeVar("R")

#: Seconds every call fails fast after a failure, before the server is tried again.
RECONNECT_INTERVAL = 2.0
#: Seconds a call may wait in all (for a connection, to connect, for its statement).
DEFAULT_WAIT = 1.0
#: The server's ``statement_timeout``: the bound of a statement off the request path
#: (claims, deletes, renewals), where the client waits a second longer.
STATEMENT_TIMEOUT = 10.0
#: Connections one process opens at most (request threads, senders, the keeper).
DEFAULT_SIZE = 4
_TOO_MANY = "53300"  # SQLSTATE too_many_connections


class PgConnection:
    """``run(work)``: ``work(connection)`` on one of this process's connections."""

    def __init__(
        self,
        url: str,
        *,
        wait: float = DEFAULT_WAIT,
        statement_timeout: float = STATEMENT_TIMEOUT,
        size: int = DEFAULT_SIZE,
    ) -> None:
        self._url = url
        #: The URL without its password: what messages and reprs show.
        self.location = redact_url(url)
        self._wait = wait
        self._statement_timeout = statement_timeout
        #: The bound of a call off the request path: the server cancels first.
        self.background_wait = max(wait, statement_timeout + 1.0)
        self._size = size
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()  # guards the fields below; never held over a call
        self._changed = threading.Condition(self._lock)
        self._idle: list[Any] = []
        self._open = 0  # connections made or being made, idle or in use
        self._closed = False
        self._connecting = False
        self._retry_at = 0.0
        self._last_error = ""
        self._watchdog = Watchdog()

    def __repr__(self) -> str:
        return f"PgConnection({self.location!r})"

    def run(self, work: Callable[[Any], R], *, wait: float | None = None) -> R:
        """``work(connection)``, all of it within ``wait`` seconds (default: the pool's);
        driver errors and every bound passed become OutboxError."""
        if self._pid != os.getpid():
            # Forked (uWSGI may skip at-fork hooks): the inherited connections are the
            # parent's sessions and the lock may have been held at the fork. All anew;
            # psycopg itself never closes a connection in a process that did not open it.
            self._reset()
        bound = self._wait if wait is None else wait
        deadline = time.monotonic() + bound
        conn = self._acquire(deadline, bound)
        guard: Guard | None = None
        try:
            with self._watchdog.guard(conn, deadline) as guard:
                result = work(conn)
        except psycopg.Error as exc:
            fired = guard is not None and guard.fired
            # Did the statement run? An error the server sent (it has an SQLSTATE, e.g.
            # a terminated session's 57P01) means it did not; a connection that just
            # ended, or our own cut, cannot say.
            lost = fired or (conn.closed and getattr(exc, "sqlstate", None) is None)
            if fired:  # no answer: every call fails fast for a while
                self._failed(f"no answer within {bound:g} s", fail_fast=True)
            elif lost or isinstance(exc, psycopg.OperationalError):
                self._failed(self.scrub(exc), fail_fast=False)  # answered: try again now
            self._release(conn)
            error = OutboxUncertain if lost else OutboxError
            if fired:
                raise error(
                    f"PostgreSQL at {self.location} did not answer within {bound:g} s"
                    " (AFFY_OUTBOX_TIMEOUT)"
                ) from None
            raise error(f"PostgreSQL at {self.location}: {self.scrub(exc)}") from None
        except BaseException:
            self._release(conn)
            raise
        self._release(conn, reuse=guard is not None and not guard.fired)
        return result

    # -- the pool ------------------------------------------------------------------------

    def _acquire(self, deadline: float, bound: float) -> Any:
        with self._lock:
            while True:
                if time.monotonic() < self._retry_at:
                    raise OutboxError(
                        f"PostgreSQL at {self.location} is unreachable ({self._last_error});"
                        " retrying soon"
                    )
                if self._idle:
                    return self._idle.pop()
                if self._open < self._size and not self._connecting:
                    self._open += 1
                    self._connecting = True
                    threading.Thread(target=self._connect_in_background, daemon=True).start()
                left = deadline - time.monotonic()
                if left <= 0:
                    busy = f"all {self._size} connections busy"
                    what = "connecting" if self._connecting else busy
                    raise OutboxError(
                        f"PostgreSQL at {self.location}: {what} for {bound:g} s"
                        " (AFFY_OUTBOX_TIMEOUT)"
                    )
                self._changed.wait(left)

    def _connect_in_background(self) -> None:
        try:
            conn = self._connect()
        except OutboxError as exc:
            with self._lock:
                self._open -= 1
                self._connecting = False
                self._retry_at = time.monotonic() + RECONNECT_INTERVAL
                self._last_error = str(exc)
                self._changed.notify_all()
            return
        except BaseException:  # pragma: no cover - not an error psycopg raises
            with self._lock:
                self._open -= 1
                self._connecting = False
                self._changed.notify_all()
            raise
        with self._lock:
            self._connecting = False
            closed = self._closed
            if closed:
                self._open -= 1
            else:
                self._idle.append(conn)
            self._changed.notify_all()
        if closed:
            with contextlib.suppress(Exception):
                conn.close()

    def _release(self, conn: Any, *, reuse: bool = False) -> None:
        healthy = reuse and not conn.closed
        if healthy and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            healthy = False  # work left a transaction open: not for the next caller
        if not healthy:
            with contextlib.suppress(Exception):
                conn.close()
        with self._lock:
            if healthy and not self._closed:
                self._idle.append(conn)
            else:
                self._open -= 1
            self._changed.notify()

    def _failed(self, why: str, *, fail_fast: bool) -> None:
        """Drop the idle connections, which may be as dead as this one (a restart), and
        with ``fail_fast`` (the server did not answer) fail every call for a while. A
        server that answered with an error is tried again at once: a reconnection that
        fails then starts the fail-fast window itself."""
        with self._lock:
            if fail_fast:
                self._retry_at = time.monotonic() + RECONNECT_INTERVAL
                self._last_error = why
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._changed.notify_all()
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.close()

    def _connect(self) -> Any:
        if psycopg is None:
            raise OutboxError(
                "a postgresql:// outbox needs psycopg: pip install 'affy_middleware[postgres]'"
            )
        try:
            conn = psycopg.connect(
                self._url,
                autocommit=True,
                connect_timeout=max(2, math.ceil(self._wait)),  # libpq's minimum is 2 s
                application_name="affy_middleware",
                keepalives=1,
                keepalives_idle=5,
                keepalives_interval=2,
                keepalives_count=3,
                tcp_user_timeout=max(1000, int(self._wait * 1000)),
            )
            try:  # a SET, not a startup option: poolers (PgBouncer) refuse those
                conn.execute(
                    "SELECT set_config('statement_timeout', %s, false)",
                    (f"{max(1, int(self._statement_timeout * 1000))}ms",),
                )
            except BaseException:
                conn.close()
                raise
            return conn
        except psycopg.Error as exc:
            if getattr(exc, "sqlstate", None) == _TOO_MANY or "too many clients" in str(exc):
                raise OutboxError(
                    f"PostgreSQL at {self.location} refused a connection: its"
                    f" max_connections is reached. Each process of the app opens up to"
                    f" {self._size} outbox connections: raise max_connections, run fewer"
                    " workers, or put a pooler (PgBouncer) in front"
                ) from None
            raise OutboxError(
                f"cannot reach PostgreSQL at {self.location}: {self.scrub(exc)}"
            ) from None

    def scrub(self, exc: BaseException) -> str:
        """The driver's message without the URL's password."""
        return scrub(str(exc), self._url)

    def close(self) -> None:
        if self._pid != os.getpid():
            self._reset()  # the parent's: not ours to close
            return
        with self._lock:
            self._closed = True  # connections in use are closed when they come back
            idle, self._idle = self._idle, []
            self._open -= len(idle)
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.close()
