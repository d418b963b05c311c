"""``health()``: is this process getting its events to AFFY? One answer for ``/healthz``.

Read from ``stats()`` of the process's delivery backends, plus what earlier calls saw, so
it costs nothing on the request path. What each status means:

- ``failing``: delivery is paused (AFFY unreachable, failing, or refusing the key), or
  the queue is full (new events are dropped).
- ``degraded``: events were dropped within the window, the queue is more than half full,
  or tracking has no client id (nothing is reported).
- ``ok``: anything else, including tracking switched off on purpose (``AFFY_ENABLED=0``).

::

    from affy_middleware import health

    report = health()
    if not report.ok:
        print(report.status, report.why)
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from . import delivery
from ._settings import Settings

__all__ = ["Health", "HealthStatus", "health", "DEFAULT_WINDOW"]

HealthStatus = Literal["ok", "degraded", "failing"]

#: How far back drops count against ``health()`` (five minutes), in seconds.
DEFAULT_WINDOW = 300.0


@dataclass(frozen=True)
class Health:
    """A summary of delivery in this process (no visitor data in it)."""

    #: ``ok``, ``degraded`` or ``failing`` (see the module's docstring).
    status: HealthStatus
    #: Why, in words for a human (the reasons joined by "; ").
    why: str
    #: Unix time at which a delivery to AFFY was last seen by ``health()`` (the delivery
    #: happened at most one call earlier); None before the first.
    last_success: float | None
    #: Events accepted and not yet delivered (waiting or in flight).
    queue_depth: int
    #: Room in the memory queues (``AFFY_QUEUE_SIZE`` per backend; 0 for ``sync``).
    queue_capacity: int
    #: Whether the pipeline is paused after failures.
    paused: bool
    #: Age in seconds of the oldest event not yet delivered (None: none waiting, or a
    #: delivery mode that does not keep a queue).
    oldest_undelivered_age: float | None = None
    #: Events dropped within the window, by reason (``queue_full``, ``rejected``...).
    dropped: Mapping[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        """For a JSON answer."""
        data = asdict(self)
        data["dropped"] = dict(self.dropped)
        return data


class _Watch:
    """What earlier calls saw: counter marks over the window and the last delivery."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.pid = os.getpid()
        self.marks: collections.deque[tuple[float, dict[str, int]]] = collections.deque(
            maxlen=64
        )
        self.sent = 0
        self.sent_seen: float | None = None

    def baseline(self, now: float, window: float, stats: Mapping[str, int]) -> dict[str, int]:
        """The counters as they were ``window`` seconds ago (zero before the first call:
        what happened before it counts as recent), and remember these ones."""
        with self.lock:
            if self.pid != os.getpid():  # a forked child counts from zero
                self._reset()
            marks = self.marks
            if not marks:
                marks.append((now, {}))
            base = marks[0][1]
            for at, counters in marks:  # the newest mark at least ``window`` old
                if at > now - window:
                    break
                base = counters
            # Keep a mark per 1/16 of the window, and the latest call's in the last one.
            if len(marks) >= 2 and now - marks[-2][0] < window / 16:
                marks[-1] = (now, dict(stats))
            else:
                marks.append((now, dict(stats)))
            sent = stats.get("sent", 0)
            if sent > self.sent or (sent and self.sent_seen is None):
                self.sent, self.sent_seen = sent, time.time()
            return base


_watch = _Watch()


def health(window: float = DEFAULT_WINDOW) -> Health:
    """Delivery health of this process, for a ``/healthz`` view. Never raises.

    ``window``: how many seconds back dropped events count (default five minutes).
    """
    try:
        return _assess(window)
    except Exception as exc:  # a health check must answer, whatever went wrong
        return Health("failing", f"health check error: {type(exc).__name__}", None, 0, 0, False)


def _assess(window: float) -> Health:
    pairs = delivery.backends()
    totals: dict[str, int] = {}
    capacity = 0
    oldest: float | None = None
    for settings, backend in pairs:
        for key, value in backend.stats().items():
            totals[key] = totals.get(key, 0) + value
        made = backend.oldest_event_at()
        if made is not None and (oldest is None or made < oldest):
            oldest = made
        if settings.active and not backend.blocks:
            capacity += settings.queue_size
    base = _watch.baseline(time.monotonic(), max(0.0, window), totals)
    dropped = {
        key.removeprefix("dropped_"): value - base.get(key, 0)
        for key, value in totals.items()
        if key.startswith("dropped_") and value > base.get(key, 0)
    }
    depth = totals.get("queued", 0) + totals.get("in_flight", 0)
    paused = totals.get("paused", 0) > 0
    failing, degraded = [], []
    if paused:
        failing.append("delivery is paused: AFFY is unreachable, failing or refusing the key")
    if capacity and depth >= capacity:
        failing.append(f"the queue is full ({depth} events): new events are dropped")
    elif capacity and depth > capacity // 2:
        degraded.append(f"the queue is more than half full ({depth} of {capacity})")
    if dropped:
        counts = ", ".join(f"{n} {reason}" for reason, n in sorted(dropped.items()))
        degraded.append(f"events dropped in the last {window:g} s ({counts})")
    if any(s.enabled and s.client_id is None for s, _ in pairs):
        degraded.append("no AFFY_CLIENT_ID: nothing is reported")
    status: HealthStatus = "failing" if failing else "degraded" if degraded else "ok"
    why = "; ".join(failing + degraded) or _quiet_reason(pairs)
    return Health(
        status=status,
        why=why,
        last_success=_watch.sent_seen,
        queue_depth=depth,
        queue_capacity=capacity,
        paused=paused,
        oldest_undelivered_age=None if oldest is None else max(0.0, time.time() - oldest),
        dropped=dropped,
    )


def _quiet_reason(pairs: list[tuple[Settings, delivery.Backend]]) -> str:
    if not pairs:
        return "no event reported yet in this process"
    if not any(settings.active for settings, _ in pairs):
        return "tracking is switched off (AFFY_ENABLED=0 or AFFY_DELIVERY=off)"
    return "delivering"
