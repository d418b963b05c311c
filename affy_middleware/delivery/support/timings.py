"""How long each call to AFFY took, by kind and status class: the data behind
``affy_delivery_seconds`` (Prometheus) and ``affy.delivery.duration`` (OpenTelemetry).

The attempt step records one duration per call (on a delivery thread, or the caller's with
``AFFY_DELIVERY=sync``) into fixed buckets under a lock; the Prometheus collector reads
them at scrape time. No exporter is imported here: OpenTelemetry, whose histograms take
single measurements, registers a listener that gets each duration as it is recorded.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_left
from collections.abc import Callable

__all__ = ["BUCKETS", "Timings", "TIMINGS", "status_class"]

#: Upper bounds in seconds (Prometheus' ``le``); a last implicit ``+Inf``. Around the
#: default ``AFFY_TIMEOUT`` of 5 s, and below it where healthy calls fall.
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Listener = Callable[[str, str, float], None]


def status_class(status: int | None) -> str:
    """What AFFY answered, ``"2xx"`` to ``"5xx"`` (``"4xx"`` for 404), or ``"error"``
    when it did not answer (network, timeout)."""
    if status is None or not 200 <= status < 600:
        return "error"
    return f"{status // 100}xx"


class Timings:
    """Per (kind, status class): a count per bucket (the last one ``+Inf``) and the sum.
    Starts empty in a forked child (by pid: uWSGI forks without Python's hooks)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._data: dict[tuple[str, str], tuple[list[int], list[float]]] = {}
        #: Called with (kind, status class, seconds) after each record, outside the lock.
        self.listeners: list[Listener] = []

    def after_fork_in_child(self) -> None:
        """A new lock: the parent's sender may have held this one at the fork."""
        self._lock = threading.Lock()

    def record(self, kind: str, klass: str, seconds: float) -> None:
        slot = bisect_left(BUCKETS, seconds)
        with self._lock:
            if self._pid != os.getpid():
                self._pid, self._data = os.getpid(), {}
            entry = self._data.get((kind, klass))
            if entry is None:
                entry = self._data[kind, klass] = ([0] * (len(BUCKETS) + 1), [0.0])
            entry[0][slot] += 1
            entry[1][0] += seconds
        for listener in self.listeners:
            try:
                listener(kind, klass, seconds)
            except Exception:  # an exporter's fault must not fail a delivery
                continue

    def snapshot(self) -> dict[tuple[str, str], tuple[list[int], float]]:
        """Per (kind, status class): cumulative counts per bucket (``+Inf`` last), sum."""
        with self._lock:
            if self._pid != os.getpid():
                return {}
            out = {}
            for key, (counts, total) in self._data.items():
                running, cumulative = 0, []
                for n in counts:
                    running += n
                    cumulative.append(running)
                out[key] = (cumulative, total[0])
            return out


#: The process's timings (every backend's calls).
TIMINGS = Timings()


