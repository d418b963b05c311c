"""The outbox in the metrics: malformed rows given up (by reason and kind), and the rows
by state (``affy_outbox_events{state}``), read back from a real registry and reader."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from _journey import journey
from prometheus_client import CollectorRegistry

from affy_middleware import Settings
from affy_middleware.delivery import Backend, backend_for
from affy_middleware.delivery.outbox.sqlite import SqliteOutbox
from affy_middleware.metrics import register_prometheus
from affy_middleware.sandbox import SandboxServer


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def insert(path: Path, event_id: str, record: bytes) -> None:
    """A row the library did not write, first in line."""
    SqliteOutbox(str(path)).close()  # the tables
    with sqlite3.connect(path) as db:
        (seq,) = db.execute("SELECT COALESCE(MIN(seq), 1) - 1 FROM affy_outbox").fetchone()
        db.execute(
            "INSERT INTO affy_outbox (seq, event_id, record, created_at) VALUES (?, ?, ?, ?)",
            (seq, event_id, record, time.time()),
        )


def test_malformed_rows_are_dropped_by_reason_and_kind(
    tmp_path: Path, sandbox: SandboxServer, registry: dict[Settings, Backend]
) -> None:
    spool = tmp_path / "outbox.sqlite"
    payment = {"kind": "payment", "eventId": "p", "createdAt": 1, "body": 5}
    insert(spool, "bad-payment", json.dumps(payment).encode())
    foreign = {"kind": "visitor-controlled-kind", "eventId": "f", "createdAt": 1, "body": {}}
    insert(spool, "bad-kind", json.dumps(foreign).encode())
    metrics = CollectorRegistry()
    register_prometheus(metrics)
    settings = sandbox.settings(spool_path=str(spool))
    journey(settings)
    assert backend_for(settings).flush(10)
    assert value(metrics, "affy_events_dropped_total", reason="malformed") == 2
    assert value(metrics, "affy_events_total", kind="payment", outcome="dropped") == 1
    assert value(metrics, "affy_events_total", kind="unknown", outcome="dropped") == 1
    assert value(metrics, "affy_events_total", kind="payment", outcome="delivered") == 1
    kinds = {
        sample.labels.get("kind")
        for family in metrics.collect()
        for sample in family.samples
        if "kind" in sample.labels
    }
    assert "visitor-controlled-kind" not in kinds
    # Not enqueued by this process (no app wrote them): accepted counts the journey only.
    assert value(metrics, "affy_events_accepted_total") == 3
