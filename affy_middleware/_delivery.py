"""Delivery: the queue between the request thread and AFFY, one per ``Settings``.

The middleware and the decorators call ``dispatcher_for(settings).enqueue(event)``; the
module-level :func:`flush`, :func:`shutdown` and :func:`stats` act on every dispatcher of
the process. The machinery lives in ``_worker`` (queue and threads), ``_retry`` (backoff
and the pipeline-wide pause) and ``_spool`` (the SQLite outbox). What is guaranteed, and
what is not, is written down in ``docs/delivery.md``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from collections.abc import Iterator, Mapping

from ._settings import Settings
from ._wire import Event
from ._worker import Dispatcher, capture_stack

__all__ = [
    "Dispatcher",
    "dispatcher_for",
    "capture",
    "flush",
    "shutdown",
    "stats",
]

_dispatchers: dict[Settings, Dispatcher] = {}
_registry_lock = threading.Lock()


def dispatcher_for(settings: Settings) -> Dispatcher:
    """The process's one dispatcher for these settings (created on first use). With a
    spool, creating it starts delivery at once, so rows left by an earlier process are
    replayed without waiting for a new event."""
    dispatcher = _dispatchers.get(settings)
    if dispatcher is not None:
        return dispatcher
    with _registry_lock:
        dispatcher = _dispatchers.get(settings)
        if dispatcher is None:
            dispatcher = _dispatchers[settings] = Dispatcher(settings)
            created = True
        else:
            created = False
    if created and settings.spool_path is not None:
        dispatcher.start()
    return dispatcher


@contextlib.contextmanager
def capture() -> Iterator[list[Event]]:
    """Capture every enqueued event (instead of sending it) while the block runs::

        with capture() as events:
            report_payment("9.99", session_id="s1")
        assert events[0].kind == "payment"

    Process-wide (events enqueued by other threads are captured too), and captured even
    when the settings are inactive (no client id). Nothing is sent meanwhile.
    """
    events: list[Event] = []
    capture_stack.append(events)
    try:
        yield events
    finally:
        capture_stack.remove(events)


def flush(timeout: float | None = None) -> bool:
    """Wait (at most ``timeout`` seconds in all; None: each dispatcher's
    ``flush_timeout``) until every accepted event was delivered. True if all were."""
    dispatchers = list(_dispatchers.values())
    if timeout is None:
        return all([d.flush(None) for d in dispatchers])
    end = time.monotonic() + max(0.0, timeout)
    return all([d.flush(max(0.0, end - time.monotonic())) for d in dispatchers])


def shutdown(timeout: float | None = None) -> None:
    """Flush (bounded by ``timeout`` in all), then stop the delivery threads."""
    budget = timeout
    if budget is None:
        budget = max((d.settings.flush_timeout for d in _dispatchers.values()), default=0.0)
    end = time.monotonic() + max(0.0, budget)
    for d in list(_dispatchers.values()):
        d.shutdown(max(0.0, end - time.monotonic()))


def stats() -> Mapping[str, int]:
    """Counters summed over the process's dispatchers: enqueued, sent, retried, failed,
    dropped (and dropped_<reason>), queued, in_flight, spooled, ..."""
    total: dict[str, int] = {}
    for d in list(_dispatchers.values()):
        for key, value in d.stats().items():
            total[key] = total.get(key, 0) + value
    return total


def _at_exit() -> None:
    """One short, bounded flush at interpreter exit (``AFFY_FLUSH_TIMEOUT``)."""
    dispatchers = list(_dispatchers.values())
    budget = max((d.settings.flush_timeout for d in dispatchers), default=0.0)
    end = time.monotonic() + budget
    for d in dispatchers:
        with contextlib.suppress(Exception):
            d.shutdown(max(0.0, end - time.monotonic()), final=True)


def _before_fork() -> None:
    for d in list(_dispatchers.values()):
        with contextlib.suppress(Exception):
            d.before_fork()


def _after_fork_in_parent() -> None:
    for d in list(_dispatchers.values()):
        with contextlib.suppress(Exception):
            d.after_fork_in_parent()


def _after_fork_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()
    for d in list(_dispatchers.values()):
        d._after_fork()


atexit.register(_at_exit)
os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)
