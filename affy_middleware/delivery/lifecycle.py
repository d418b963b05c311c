"""The library's first set-up, and its exit: what is registered with the interpreter.

Importing the package registers nothing. The first set-up (``delivery.set_up``: a
middleware, a backend, ``flush()``, ``stats()``) registers, once, the bounded exit flush,
the fork hooks and the callbacks of the packages above (the metrics, through
:func:`when_set_up`, so that ``delivery`` does not import them).
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
from collections.abc import Callable

from .._settings import Settings
from .base import Backend
from .support import fork

__all__ = ["set_up", "when_set_up"]

Backends = Callable[[], list[tuple[Settings, Backend]]]

_on_set_up: list[Callable[[], object]] = []
_lock = threading.Lock()
_done = False


def when_set_up(callback: Callable[[], object]) -> None:
    """Call ``callback`` (never raising) at the library's first set-up, or now if done."""
    with _lock:
        if not _done:
            _on_set_up.append(callback)
            return
    with contextlib.suppress(Exception):
        callback()


def set_up(backends: Backends, renew_in_child: Callable[[], object]) -> None:
    """Register the exit flush and the fork hooks (``renew_in_child``: the registry's own
    per-process state, renewed first in a child), then the ``when_set_up`` callbacks.
    Later calls do nothing."""
    global _done
    with _lock:
        if _done:
            return
        _done = True
        callbacks, _on_set_up[:] = list(_on_set_up), []
    atexit.register(_at_exit, backends)
    # The hooks fence HTTP calls around os.fork; without them (uWSGI) the pid checks
    # suffice. A fork before any set-up has nothing to fence.
    fork.register_hooks(lambda: [backend for _, backend in backends()], renew_in_child)
    for callback in callbacks:
        with contextlib.suppress(Exception):
            callback()


def longest_flush(backends: Backends) -> float:
    """The longest ``AFFY_FLUSH_TIMEOUT`` of the process's backends."""
    return max((settings.flush_timeout for settings, _ in backends()), default=0.0)


def _at_exit(backends: Backends) -> None:
    """One short, bounded flush at interpreter exit (``AFFY_FLUSH_TIMEOUT``)."""
    end = time.monotonic() + longest_flush(backends)
    for _, backend in backends():
        with contextlib.suppress(Exception):
            backend.close(max(0.0, end - time.monotonic()), final=True)
