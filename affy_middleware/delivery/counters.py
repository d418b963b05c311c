"""The counters behind ``affy_middleware.stats()``, in one always-locked object."""

from __future__ import annotations

import threading

__all__ = ["COUNTERS", "Counters", "empty_stats", "with_gauges"]

#: Counters reported by ``stats()`` (plus the gauges queued, in_flight, paused, spooled,
#: ``dropped``, the sum of the ``dropped_*`` counters, and ``outbox_errors``, the
#: documented name of ``spool_errors``, which stays as its alias).
COUNTERS = (
    "enqueued",
    "sent",
    "retried",
    "failed",
    "dropped_queue_full",
    "dropped_rejected",
    "dropped_expired",
    "dropped_shutdown",
    "dropped_unsent",
    "spool_errors",
    "outbox_slow",
    "dead_letters",
    "handed_over",
    "pauses",
    "waiting_for_click",
    "sent_without_click",
    "dropped_click_unknown",
    "config_errors",
)


class Counters:
    """Monotonic counters shared by a backend's threads. Every change is made under
    ``lock``, so a reader never sees a half-made update. The thread backend passes its
    queue's lock, so that ``submit`` counts under the lock it holds already (``values``);
    everyone else calls ``add``. The lock is never replaced: threads may wait on it."""

    __slots__ = ("lock", "values")

    def __init__(self, lock: threading.Lock | None = None) -> None:
        self.lock = lock or threading.Lock()
        #: Change only while holding ``lock``.
        self.values = dict.fromkeys(COUNTERS, 0)

    def add(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.values[name] += n

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.values)


def empty_stats() -> dict[str, int]:
    """Every key of ``stats()`` at zero (a backend that delivers nothing)."""
    result = dict.fromkeys(COUNTERS, 0)
    result.update(queued=0, in_flight=0, paused=0, dropped=0, spooled=0, outbox_errors=0)
    return result


def with_gauges(
    counters: dict[str, int], *, queued: int, in_flight: int, paused: bool, spooled: int
) -> dict[str, int]:
    """The counters plus the gauges and the ``dropped`` total, as ``stats()`` reports."""
    counters.update(queued=queued, in_flight=in_flight, paused=int(paused))
    counters["dropped"] = sum(v for k, v in counters.items() if k.startswith("dropped_"))
    counters["spooled"] = spooled
    counters["outbox_errors"] = counters["spool_errors"]  # the documented name (issue 11)
    return counters
