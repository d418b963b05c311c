"""Fork safety in one place: the HTTP fence and what a child inherits.

A fork (gunicorn ``--preload``, Celery prefork, uWSGI) copies the parent's memory but not
its threads. The registry's ``os.register_at_fork`` hooks fence HTTP calls around the
fork. They are only a fast path: uWSGI forks without running them, so everything per
process (event ids, the registry and its lock, each backend's queue, threads, client,
breaker and log throttles) is found by pid through ``affy_middleware._process``, and the
first use in a new process makes that process's own.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..base import Backend

__all__ = [
    "FORK_WAIT",
    "HttpFence",
    "in_forking_master",
    "inherit",
    "register_hooks",
]

#: Longest a fork waits for this process's HTTP calls to AFFY to finish (seconds).
FORK_WAIT = 1.0

#: Objects inherited from a parent process: never closed in the child (their sockets and
#: SQLite locks belong to the parent), only kept alive.
_inherited: list[object] = []


def in_forking_master() -> bool:
    """Whether this is a uWSGI master that loaded the app and will fork its workers in C
    (preforking, the default): its own threads would be cut mid-call by the fork,
    holding libpq's, OpenSSL's or an import's locks in every worker."""
    uwsgi = sys.modules.get("uwsgi")
    if uwsgi is None:
        return False
    try:
        return int(uwsgi.worker_id()) == 0 and not uwsgi.opt.get("lazy-apps")
    except Exception:  # not the real uwsgi module, or an older one
        return False


def inherit(*things: object) -> None:
    """Keep the parent's client and outbox handle alive, unused and unclosed."""
    _inherited.extend(thing for thing in things if thing is not None)


class HttpFence:
    """Keeps a fork from landing in the middle of an HTTP call: the child would inherit
    the TLS library's and the connection pool's locks held forever."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._active = 0
        self._forking = False

    @contextlib.contextmanager
    def call(self) -> Iterator[None]:
        with self._lock:
            if self._forking:
                self._idle.wait(FORK_WAIT)
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                if self._active == 0:
                    self._idle.notify_all()

    def before_fork(self) -> None:
        """Hold new calls and wait (bounded) for running ones to end."""
        with self._lock:
            self._forking = True
            end = time.monotonic() + FORK_WAIT
            while self._active and time.monotonic() < end:
                self._idle.wait(end - time.monotonic())

    def after_fork_in_parent(self) -> None:
        with self._lock:
            self._forking = False
            self._idle.notify_all()


def register_hooks(backends: Callable[[], list[Backend]], reset: Callable[[], object]) -> None:
    """Run the backends' fork hooks around every ``os.fork``; ``reset`` renews the
    registry's own per-process state in the child first."""

    def before() -> None:
        for backend in backends():
            with contextlib.suppress(Exception):
                backend.before_fork()

    def after_in_parent() -> None:
        for backend in backends():
            with contextlib.suppress(Exception):
                backend.after_fork_in_parent()

    def after_in_child() -> None:
        reset()
        for backend in backends():
            backend.after_fork_in_child()

    os.register_at_fork(
        before=before, after_in_parent=after_in_parent, after_in_child=after_in_child
    )
