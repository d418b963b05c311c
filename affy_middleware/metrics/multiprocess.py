"""Prometheus in multiprocess mode (gunicorn and ``PROMETHEUS_MULTIPROC_DIR``).

There a scrape is answered by one worker from the files every process writes, so a
collector that reads ``stats()`` at scrape time would see that worker alone. Instead each
process copies its ``stats()`` into real ``prometheus_client`` metrics (files) every
``interval`` seconds from a daemon thread (never on the request path), and at exit.
Counters are summed over every process that ever ran; the gauges over the live ones
(``livesum``; ``affy_pipeline_paused``: ``livemax``), once gunicorn's ``child_exit`` hook
calls ``multiprocess.mark_process_dead(worker.pid)``. ``affy_outbox_events`` counts rows of
the one outbox every worker shares: the newest reading wins (``mostrecent``), not a sum.

``affy_delivery_seconds`` cannot be copied (a histogram takes single observations, and
there is no public way to add to its buckets): each call to AFFY is observed into a real
``Histogram`` as it is timed, by a listener of ``delivery.timings`` on the delivery thread,
and the collector merges every process's buckets.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading

from prometheus_client import Counter, Gauge, Histogram

from ..delivery.support.timings import BUCKETS, TIMINGS
from ._readings import DROP_REASONS, STATES, read

__all__ = ["Mirror", "start", "DEFAULT_INTERVAL"]

#: Seconds between two copies of ``stats()`` into the files (what a scrape may lag).
DEFAULT_INTERVAL = 5.0


class Mirror:
    """This process's ``stats()`` as multiprocess metrics. ``registry=None``: the values
    reach the scrape through the files, not through a registry of this process."""

    def __init__(self) -> None:
        self.events = Counter(
            "affy_events",
            "Events finished, by kind and outcome.",
            ["kind", "outcome"],
            registry=None,
        )
        self.dropped = Counter(
            "affy_events_dropped", "Events given up, by reason.", ["reason"], registry=None
        )
        self.accepted = Counter(
            "affy_events_accepted", "Events accepted for delivery.", registry=None
        )
        self.retries = Counter(
            "affy_delivery_retries", "Calls to AFFY that failed and were retried.", registry=None
        )
        self.pauses = Counter(
            "affy_pipeline_pauses", "Times delivery paused after failures.", registry=None
        )
        self.queue = Gauge(
            "affy_queue_events",
            "Events accepted and not yet delivered.",
            registry=None,
            multiprocess_mode="livesum",
        )
        self.capacity = Gauge(
            "affy_queue_capacity_events",
            "Room in the delivery queues.",
            registry=None,
            multiprocess_mode="livesum",
        )
        self.paused = Gauge(
            "affy_pipeline_paused",
            "1 while delivery is paused after failures.",
            registry=None,
            multiprocess_mode="livemax",
        )
        # One outbox for every worker: each reads the same rows, so a sum would count
        # them once per worker. The newest reading of any process is the right one.
        self.outbox = Gauge(
            "affy_outbox_events",
            "Rows in the outbox (all processes), by state: pending, leased, dead.",
            ["state"],
            registry=None,
            multiprocess_mode="mostrecent",
        )
        self.durations = Histogram(
            "affy_delivery_seconds",
            "Seconds one call to AFFY took, by kind and status class (2xx..5xx, error).",
            ["kind", "status_class"],
            registry=None,
            buckets=BUCKETS,
        )
        self.lock = threading.Lock()
        self.pid = os.getpid()
        #: What this process published so far, per counter and label (counters only grow).
        self.published: dict[tuple[str, str], int] = {}

    def sample(self) -> None:
        """Copy ``stats()`` now: counters grow by what is new, gauges take the value."""
        r = read()
        with self.lock:
            if self.pid != os.getpid():  # a forked child starts from zero, in its own file
                self.pid, self.published = os.getpid(), {}
            for (kind, outcome), total in r.events.items():
                events = self.events.labels(kind, outcome)
                self._grow(events, ("events", f"{kind}/{outcome}"), total)
            for reason in DROP_REASONS:
                self._grow(self.dropped.labels(reason), ("dropped", reason), r.dropped[reason])
            self._grow(self.accepted, ("accepted", ""), r.accepted)
            self._grow(self.retries, ("retries", ""), r.retried)
            self._grow(self.pauses, ("pauses", ""), r.pauses)
            self.queue.set(r.queue)
            self.capacity.set(r.capacity)
            self.paused.set(r.paused)
            if r.has_outbox:  # a process without one says nothing of it
                for state in STATES:
                    self.outbox.labels(state).set(r.outbox_states[state])

    def observe(self, kind: str, klass: str, seconds: float) -> None:
        """A ``Timings`` listener: one call to AFFY into this process's histogram file
        (on the thread that made the call; a few microseconds, no lock of ours)."""
        self.durations.labels(kind, klass).observe(seconds)

    def _grow(self, counter: Counter, key: tuple[str, str], total: int) -> None:
        new = total - self.published.get(key, 0)
        if new > 0:
            counter.inc(new)
            self.published[key] = total


class _Sampler:
    """The daemon thread of one process (started again in a forked child)."""

    def __init__(self, mirror: Mirror, interval: float) -> None:
        self.mirror = mirror
        self.interval = interval
        self.pid = -1
        self.stop = threading.Event()

    def ensure_running(self) -> None:
        if self.pid == os.getpid():
            return
        self.pid = os.getpid()
        self.stop = threading.Event()
        threading.Thread(target=self._run, name="affy-metrics", daemon=True).start()

    def _run(self) -> None:
        stop = self.stop
        while not stop.wait(self.interval):
            try:
                self.mirror.sample()
            except Exception:  # a full disk must not end the sampling for good
                continue


_lock = threading.Lock()
_sampler: _Sampler | None = None


def start(interval: float = DEFAULT_INTERVAL) -> Mirror:
    """Start copying ``stats()`` in this process (and in children forked from it); a
    shorter ``interval`` than the running one replaces it."""
    global _sampler
    with _lock:
        if _sampler is None:
            _sampler = _Sampler(Mirror(), interval)
            TIMINGS.listeners.append(_sampler.mirror.observe)
            os.register_at_fork(after_in_child=_after_fork)
            atexit.register(_at_exit)
        _sampler.interval = min(_sampler.interval, interval)
        _sampler.ensure_running()
        return _sampler.mirror


def _after_fork() -> None:
    if _sampler is not None:
        _sampler.mirror.lock = threading.Lock()  # the parent's sampler may have held it
        _sampler.ensure_running()


def _at_exit() -> None:
    """The counts of the last seconds. (This runs before the library's own exit flush,
    registered earlier: what that flush delivers is not counted.)"""
    if _sampler is not None:
        _sampler.stop.set()
        with contextlib.suppress(Exception):
            _sampler.mirror.sample()
