"""Fork safety in one place: the HTTP fence, what a child inherits, the uWSGI check.

A fork (gunicorn ``--preload``, Celery prefork, uWSGI) copies the parent's memory but not
its threads. The registry's ``os.register_at_fork`` hooks fence HTTP calls around the
fork; each backend also compares ``os.getpid()`` on ``submit``, because uWSGI forks
without running those hooks: the pid check alone must reset everything per process.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from .logs import logger

if TYPE_CHECKING:
    from .base import Backend

__all__ = [
    "FORK_WAIT",
    "HttpFence",
    "inherit",
    "register_hooks",
    "warn_if_uwsgi_without_threads",
]

#: Longest a fork waits for this process's HTTP calls to AFFY to finish (seconds).
FORK_WAIT = 1.0

#: Objects inherited from a parent process: never closed in the child (their sockets and
#: SQLite locks belong to the parent), only kept alive.
_inherited: list[object] = []
_uwsgi_checked = False


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


def warn_if_uwsgi_without_threads() -> None:
    """Under uWSGI without threads no sender thread ever runs: say so, once."""
    global _uwsgi_checked
    if _uwsgi_checked:
        return
    _uwsgi_checked = True
    uwsgi = sys.modules.get("uwsgi")
    if uwsgi is None and "uwsgi" in sys.builtin_module_names:  # uWSGI embeds it built in
        with contextlib.suppress(ImportError):
            uwsgi = importlib.import_module("uwsgi")
    if uwsgi is None:
        return
    opt = getattr(uwsgi, "opt", {}) or {}

    def on(name: str) -> bool:
        value = opt.get(name, opt.get(name.encode()))
        return value not in (None, False, b"", "", 0, b"0", "0", b"false", "false")

    if not (on("enable-threads") or on("threads")):
        logger.warning(
            "affy_middleware: uWSGI runs without threads (--enable-threads is off), so the "
            "background delivery thread never runs and events stay queued. Start uWSGI with "
            "--enable-threads, or set AFFY_DELIVERY=sync."
        )


def register_hooks(backends: Callable[[], list[Backend]], reset: Callable[[], None]) -> None:
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
