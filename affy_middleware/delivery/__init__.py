"""Delivery: how events get from the request path to AFFY.

The middleware and the decorators call ``backend_for(settings).submit(event)``; one
:class:`Backend` per ``Settings``, created on first use by :func:`make_backend`, the one
place that reads the delivery mode. The module-level :func:`flush`, :func:`shutdown` and
:func:`stats` act on every backend of the process; :func:`capture` installs a recording
backend in place of all of them. What is guaranteed, and what is not, is written down in
``docs/delivery.md``; the path of an event through these modules in
``docs/architecture.md``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping

from .._defaults import default_settings
from .._process import PerProcess
from .._settings import Settings
from .._wire import Event
from . import lifecycle
from .base import Backend, Sender, State
from .capture import CaptureBackend
from .inline import InlineBackend
from .lifecycle import when_set_up
from .off import OffBackend
from .outbox import DEFAULT_LEASE, outbox_location
from .sending.breaker import RetryPolicy
from .support import fork
from .support.timings import TIMINGS
from .thread import ThreadBackend

__all__ = [
    "Backend",
    "adopt",
    "CaptureBackend",
    "InlineBackend",
    "OffBackend",
    "RetryPolicy",
    "State",
    "ThreadBackend",
    "backend_for",
    "backends",
    "capture",
    "flush",
    "installed",
    "make_backend",
    "prepare",
    "set_aside",
    "set_up",
    "shutdown",
    "stats",
    "when_set_up",
]

class _Registry:
    """One process's backends, and the lock that guards creating them. A forked child
    makes its own (a new lock: the parent's may have been held at the fork) holding the
    same backend objects, which renew their own per-process state."""

    __slots__ = ("backends", "lock")

    def __init__(self, parent: _Registry | None = None) -> None:
        self.backends: dict[Settings, Backend] = dict(parent.backends) if parent else {}
        self.lock = threading.Lock()


_registry: PerProcess[_Registry] = PerProcess(_Registry)
#: What ``backend_for`` looks in: this process's backends, or an empty dict while a
#: backend is installed over all of them (then every look-up misses and finds the
#: installed one). A child may still read its parent's dict here: it holds the same
#: backend objects, and the first miss points it at the child's own.
_lookup: dict[Settings, Backend] = _registry.peek().backends
_installed: list[Backend] = []


def _backends() -> list[Backend]:
    return list(_registry.get().backends.values())


def make_backend(
    settings: Settings,
    *,
    send: Sender | None = None,
    retry_policy: RetryPolicy | None = None,
    outbox_lease: float = DEFAULT_LEASE,
) -> Backend:
    """A new backend for the settings' delivery mode (``send``, ``retry_policy`` and
    ``outbox_lease`` are for tests and benchmarks). Most code wants :func:`backend_for`."""
    if not settings.active:
        return OffBackend()
    kind = InlineBackend if settings.delivery == "sync" else ThreadBackend
    return kind(settings, send=send, retry_policy=retry_policy, outbox_lease=outbox_lease)


def backend_for(settings: Settings) -> Backend:
    """The process's one backend for these settings (created on first use). With an
    outbox, creating it starts delivery at once, so rows left by an earlier process are
    replayed without waiting for a new event. On the request path: one dict look-up."""
    try:
        return _lookup[settings]
    except KeyError:
        return _create(settings)


def prepare(settings: Settings | None = None) -> None:
    """Set-up time (a middleware, ``flush()``, ``stats()``): with an outbox, make the
    backend of ``settings`` (default: the settings of work outside a request) now, so
    that it opens the outbox off the request path and takes over rows left by dead
    processes at once, without waiting for an event. Not in a uWSGI master about to fork
    its workers (``fork.in_forking_master``): threads talking to the database there would
    be cut mid-call by the fork, and the workers open their own anyway. Never raises."""
    try:
        set_up()
        if settings is None:
            settings = default_settings()
        stored = settings.active and outbox_location(settings) is not None
        if stored and not fork.in_forking_master():
            backend_for(settings)
    except Exception:  # e.g. a malformed environment: the entry points report that
        return


def _create(settings: Settings) -> Backend:
    global _lookup
    if _installed:
        return _installed[-1]
    set_up()
    registry = _registry.get()
    with registry.lock:
        backend = registry.backends.get(settings)
        created = backend is None
        if backend is None:
            backend = registry.backends[settings] = make_backend(settings)
        if not _installed:
            _lookup = registry.backends
    if created:
        backend.start()
    return backend


@contextlib.contextmanager
def installed(backend: Backend) -> Iterator[Backend]:
    """Every ``backend_for`` answers ``backend`` while the block runs (process-wide)."""
    global _lookup
    registry = _registry.get()
    with registry.lock:
        _installed.append(backend)
        _lookup = {}
    try:
        yield backend
    finally:
        registry = _registry.get()
        with registry.lock:
            _installed.remove(backend)
            if not _installed:
                _lookup = registry.backends


@contextlib.contextmanager
def capture() -> Iterator[list[Event]]:
    """Capture every submitted event (instead of sending it) while the block runs::

        with capture() as events:
            report_payment("9.99", session_id="s1")
        assert events[0].kind == "payment"

    Process-wide (events submitted by other threads are captured too), and captured even
    when the settings are inactive (no client id). Nothing is sent meanwhile.
    """
    backend = CaptureBackend()
    with installed(backend):
        yield backend.events


def flush(timeout: float | None = None) -> bool:
    """Wait (at most ``timeout`` seconds in all; None: each backend's ``flush_timeout``)
    until every accepted event was delivered. True if all were."""
    if _installed:
        return True  # nothing is sent meanwhile: nothing to wait for
    prepare()  # a fresh process with an outbox waits for the rows others left too
    backends = _backends()
    if timeout is None:
        return all([b.flush(None) for b in backends])
    end = time.monotonic() + max(0.0, timeout)
    return all([b.flush(max(0.0, end - time.monotonic())) for b in backends])


def shutdown(timeout: float | None = None) -> None:
    """Flush (bounded by ``timeout`` in all), then stop the delivery threads and give the
    outbox rows not finished back to the other processes (the process is stopping; a
    server may end it without exit handlers). A later event starts delivery again."""
    budget = timeout if timeout is not None else lifecycle.longest_flush(backends)
    end = time.monotonic() + max(0.0, budget)
    for backend in _backends():
        backend.close(max(0.0, end - time.monotonic()), handover=True)


def stats() -> Mapping[str, int]:
    """Counters summed over the process's backends: enqueued, sent, retried, failed,
    dropped (and dropped_<reason>), queued, in_flight, spooled, ..."""
    total: dict[str, int] = {}
    prepare()
    for backend in _backends():
        for key, value in backend.stats().items():
            total[key] = total.get(key, 0) + value
    return total


def backends() -> list[tuple[Settings, Backend]]:
    """The process's backends with their settings (a copy; read by health and metrics)."""
    return list(_registry.get().backends.items())


def _renew_in_child() -> None:
    _registry.renew()
    TIMINGS.after_fork_in_child()


def set_up() -> None:
    """The library's first set-up (a middleware, a backend, ``flush()``, ``stats()``):
    the exit flush, the fork hooks, the ``when_set_up`` callbacks (``lifecycle.py``).
    Importing the package registers nothing. Later calls do nothing."""
    lifecycle.set_up(backends, _renew_in_child)


def adopt(settings: Settings, backend: Backend) -> Backend:
    """Make ``backend`` the process's backend for ``settings`` (a test's or a benchmark's
    own, e.g. with a custom ``send``); returns it. One it replaces is not closed."""
    set_up()
    registry = _registry.get()
    with registry.lock:
        registry.backends[settings] = backend
    return backend


@contextlib.contextmanager
def set_aside() -> Iterator[None]:
    """For tests that read every backend (``health()``, the metrics): the process's
    backends are set aside while the block runs; those made in it are closed at its end
    and the earlier ones come back."""
    registry = _registry.get()
    with registry.lock:
        saved = dict(registry.backends)
        registry.backends.clear()
    try:
        yield
    finally:
        with registry.lock:
            made = list(registry.backends.values())
            registry.backends.clear()
            registry.backends.update(saved)
        for backend in made:
            with contextlib.suppress(Exception):
                backend.close(1.0)
