"""The counters behind ``affy_middleware.stats()``, in one always-locked object."""

from __future__ import annotations

import threading
from collections.abc import Mapping

__all__ = [
    "COUNTERS",
    "KINDS",
    "OUTBOX_GAUGES",
    "OUTCOMES",
    "UNKNOWN_KIND",
    "Counters",
    "empty_stats",
    "outcome_key",
    "with_gauges",
]

#: The kinds of event, and what finally became of one (delivered to AFFY, refused by it
#: for good, or given up for another reason): ``stats()`` keeps a count of each pair.
KINDS = ("click", "registration", "registration_lead", "payment")
OUTCOMES = ("delivered", "rejected", "dropped")
#: The kind counted for an outbox row that names none of ``KINDS`` (a malformed row: its
#: kind never becomes a label value of its own). Only ever ``dropped``.
UNKNOWN_KIND = "unknown"


def outcome_key(kind: str, outcome: str) -> str:
    """The ``stats()`` key counting events of ``kind`` that ended as ``outcome``."""
    return f"events_{kind}_{outcome}"


def _outcome_of(name: str) -> str:
    if name == "sent":
        return "delivered"
    # AFFY answered "no" for good (a 4xx; a lead whose click it never learnt of).
    return "rejected" if name in ("dropped_rejected", "dropped_click_unknown") else "dropped"


#: Counters reported by ``stats()`` (plus the gauges queued, in_flight, paused, spooled,
#: ``outbox_<state>`` (``OUTBOX_GAUGES``), ``dropped``, the sum of the ``dropped_*``
#: counters, and ``outbox_errors``, the documented name of ``spool_errors``, which stays
#: as its alias).
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
    "dropped_malformed",
    "spool_errors",
    "outbox_slow",
    "dead_letters",
    "handed_over",
    "pauses",
    "waiting_for_click",
    "sent_without_click",
    "dropped_click_unknown",
    "config_errors",
    *(outcome_key(k, o) for k in KINDS for o in OUTCOMES),
    outcome_key(UNKNOWN_KIND, "dropped"),
)
#: The final counters (``sent``, ``dropped_*``), per kind: the per-kind key bumped with each.
_FINAL = {
    (name, kind): outcome_key(kind, _outcome_of(name))
    for name in COUNTERS
    if name == "sent" or name.startswith("dropped_")
    for kind in KINDS
}
_FINAL["dropped_malformed", UNKNOWN_KIND] = outcome_key(UNKNOWN_KIND, "dropped")


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

    def finish(self, name: str, kind: str, n: int = 1) -> None:
        """Count ``n`` events of ``kind`` finished as ``name`` (``sent``, ``dropped_*``)."""
        with self.lock:
            self.finish_locked(name, kind, n)

    def finish_locked(self, name: str, kind: str, n: int = 1) -> None:
        """``finish`` for a caller holding ``lock`` already (one more dict bump)."""
        values = self.values
        values[name] += n
        key = _FINAL.get((name, kind))
        if key is not None:
            values[key] += n

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.values)


#: The outbox's rows by state (``Outbox.states``: pending, leased, dead), all processes.
OUTBOX_GAUGES = ("outbox_pending", "outbox_leased", "outbox_dead")


def empty_stats() -> dict[str, int]:
    """Every key of ``stats()`` at zero (a backend that delivers nothing)."""
    result = dict.fromkeys(COUNTERS, 0)
    result.update(queued=0, in_flight=0, paused=0, dropped=0, spooled=0, outbox_errors=0)
    result.update(dict.fromkeys(OUTBOX_GAUGES, 0))
    return result


def with_gauges(
    counters: dict[str, int],
    *,
    queued: int,
    in_flight: int,
    paused: bool,
    outbox: Mapping[str, int],
) -> dict[str, int]:
    """The counters plus the gauges and the ``dropped`` total, as ``stats()`` reports.
    ``outbox``: its rows by state (``Outbox.states``; empty without one)."""
    counters.update(queued=queued, in_flight=in_flight, paused=int(paused))
    counters["dropped"] = sum(v for k, v in counters.items() if k.startswith("dropped_"))
    for key in OUTBOX_GAUGES:
        counters[key] = outbox.get(key.removeprefix("outbox_"), 0)
    counters["spooled"] = counters["outbox_pending"] + counters["outbox_leased"]
    counters["outbox_errors"] = counters["spool_errors"]  # the documented name (issue 11)
    return counters
