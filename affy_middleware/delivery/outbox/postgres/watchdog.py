"""A client-side deadline for every statement: a frozen server cannot hold a thread.

The server's ``statement_timeout`` is applied by the server, so a server that stopped
(a frozen host, a paused VM, SIGSTOP) or a network that went silent never applies it, and
TCP keepalives and ``tcp_user_timeout`` do not fire while the peer's kernel still
acknowledges. So one thread per process watches the deadlines of the statements running
now; when one passes, it shuts the connection's socket down (``shutdown(2)`` on a
duplicate of libpq's descriptor), which wakes the waiting thread with an error at once.
That connection is then dropped; the statement may still run when the server wakes (an
outbox write is idempotent by event id, see ``store.put``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["Guard", "Watchdog"]


class Guard:
    """One statement's deadline; ``fired`` once the watchdog cut its connection."""

    __slots__ = ("deadline", "conn", "fired")

    def __init__(self, deadline: float, conn: Any) -> None:
        self.deadline = deadline
        self.conn = conn
        self.fired = False


def cut(conn: Any) -> None:
    """Shut the connection's socket down (both ways) without closing libpq's descriptor:
    a thread waiting on it wakes with "server closed the connection"."""
    with contextlib.suppress(Exception):  # closed meanwhile: nothing to cut
        duplicate = socket.socket(fileno=os.dup(conn.pgconn.socket))
        try:
            duplicate.shutdown(socket.SHUT_RDWR)
        finally:
            duplicate.close()


class Watchdog:
    """The deadlines of the statements running now, and the thread that enforces them
    (started on first use; a daemon, idle while nothing runs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._armed: set[Guard] = set()
        self._wakes_at: float | None = None  # when the thread looks next (None: idle)
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def guard(self, conn: Any, deadline: float) -> Iterator[Guard]:
        """Watch ``conn`` until the block ends; cut it if ``deadline`` passes first."""
        guard = Guard(deadline, conn)
        with self._lock:
            self._armed.add(guard)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="affy-outbox-watchdog", daemon=True
                )
                self._thread.start()
            elif self._wakes_at is None or deadline < self._wakes_at:
                self._changed.notify()
        try:
            yield guard
        finally:
            with self._lock:  # after this, the watchdog never cuts this connection
                self._armed.discard(guard)

    def _run(self) -> None:
        with self._lock:
            while True:
                now = time.monotonic()
                for guard in [g for g in self._armed if g.deadline <= now]:
                    self._armed.discard(guard)
                    guard.fired = True
                    cut(guard.conn)  # (under the lock: its thread cannot reuse it meanwhile)
                self._wakes_at = min((g.deadline for g in self._armed), default=None)
                wait = None if self._wakes_at is None else max(0.0, self._wakes_at - now)
                self._changed.wait(wait)
