"""What the exporters publish, read from the backends' ``stats()`` at collection time.

The request path pays nothing for metrics: the counters exist already (``stats()``), and
they are only read here, when Prometheus scrapes or an OpenTelemetry reader collects.
Every label value is one of a fixed set of words: no metric carries a visitor's data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import delivery
from ..delivery.outbox import STATES, outbox_location
from ..delivery.sending.hook import REASONS
from ..delivery.support.counters import KINDS, OUTCOMES, UNKNOWN_KIND, outcome_key

__all__ = ["Readings", "read", "DROP_REASONS", "EVENT_LABELS", "KINDS", "OUTCOMES", "STATES"]

#: Why an event was given up (the ``reason`` label; ``stats()`` keys ``dropped_<reason>``).
DROP_REASONS = REASONS
# OUTCOMES (the ``outcome`` label): delivered, refused by AFFY for good (rejected, or a
# lead whose click AFFY never learnt of), or dropped for another reason (queue full,
# expired, shutdown...). KINDS: the ``kind`` label.
#: Every (kind, outcome) of ``affy_events_total``: each kind by each outcome, and the
#: malformed outbox rows that named no kind of ours, which can only be dropped.
EVENT_LABELS = (*((k, o) for k in KINDS for o in OUTCOMES), (UNKNOWN_KIND, "dropped"))


@dataclass(frozen=True)
class Readings:
    """One consistent-enough reading of every backend of this process."""

    #: Events by outcome (``OUTCOMES``), since the process started.
    outcomes: dict[str, int] = field(default_factory=dict)
    #: The same by kind and outcome: ``events[kind, outcome]``.
    events: dict[tuple[str, str], int] = field(default_factory=dict)
    #: Events dropped, by reason (``DROP_REASONS``), since the process started.
    dropped: dict[str, int] = field(default_factory=dict)
    #: Events accepted for delivery (``enqueued``), and attempts retried.
    accepted: int = 0
    retried: int = 0
    #: Pipeline pauses started.
    pauses: int = 0
    #: Events accepted and not yet finished (waiting or in flight), and the room for them.
    queue: int = 0
    capacity: int = 0
    #: 1 while delivery is paused after failures, else 0.
    paused: int = 0
    #: Rows waiting in the outbox (``AFFY_OUTBOX_URL`` / ``AFFY_SPOOL_PATH``), if any:
    #: pending or leased (``stats()["spooled"]``).
    outbox: int = 0
    #: The same rows and the dead letters by state (``STATES``: pending, leased, dead),
    #: all processes; zeros without an outbox.
    outbox_states: dict[str, int] = field(default_factory=dict)
    #: Whether any backend has an outbox (``affy_outbox_events`` is exported then only).
    has_outbox: bool = False


def read() -> Readings:
    """Sum the ``stats()`` of every backend of the process (never raises for one)."""
    totals: dict[str, int] = {}
    capacity = 0
    has_outbox = False
    for settings, backend in delivery.backends():
        try:
            stats = backend.stats()
        except Exception:  # one broken backend must not hide the others
            continue
        for key, value in stats.items():
            totals[key] = totals.get(key, 0) + value
        if settings.active and not backend.blocks:
            capacity += settings.queue_size
        has_outbox = has_outbox or outbox_location(settings) is not None
    dropped = {reason: totals.get(f"dropped_{reason}", 0) for reason in DROP_REASONS}
    events = {(k, o): totals.get(outcome_key(k, o), 0) for k, o in EVENT_LABELS}
    return Readings(
        outcomes={o: sum(n for (_, x), n in events.items() if x == o) for o in OUTCOMES},
        events=events,
        dropped=dropped,
        accepted=totals.get("enqueued", 0),
        retried=totals.get("retried", 0),
        pauses=totals.get("pauses", 0),
        queue=totals.get("queued", 0) + totals.get("in_flight", 0),
        capacity=capacity,
        paused=int(totals.get("paused", 0) > 0),
        outbox=totals.get("spooled", 0),
        outbox_states={state: totals.get(f"outbox_{state}", 0) for state in STATES},
        has_outbox=has_outbox or totals.get("spooled", 0) > 0,
    )
