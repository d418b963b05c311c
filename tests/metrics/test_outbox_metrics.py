"""The outbox in the metrics: malformed rows given up (by reason and kind), and the rows
by state (``affy_outbox_events{state}``), read back from a real registry and reader."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from _journey import journey
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry

from affy_middleware import Settings
from affy_middleware._wire import Event
from affy_middleware.delivery import Backend, backend_for
from affy_middleware.delivery.outbox.sqlite.store import SqliteOutbox
from affy_middleware.metrics import read, register_opentelemetry, register_prometheus
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


def seed_states(path: Path) -> None:
    """A dead letter; a row leased by another live process for an hour; a row of the same
    visit waiting behind it (pending: nobody may claim it before the first is done)."""
    SqliteOutbox(str(path)).close()  # the tables
    first = Event(kind="click", body={"i": 1}, order_key="visit")
    behind = Event(kind="registration", body={"i": 2}, order_key="visit")
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO affy_outbox (seq, event_id, record, created_at, order_key,"
            " owner_host, owner_pid, owner_token, lease_until)"
            " VALUES (1, ?, ?, ?, 'visit', 'another-host', 1, 'elsewhere', ?)",
            (first.event_id, first.to_record(), time.time(), time.time() + 3600),
        )
        db.execute(
            "INSERT INTO affy_outbox (seq, event_id, record, created_at, order_key)"
            " VALUES (2, ?, ?, ?, 'visit')",
            (behind.event_id, behind.to_record(), time.time()),
        )
        db.execute(
            "INSERT INTO affy_outbox_dead (event_id, record, created_at, order_key, reason,"
            " answer, buried_at) VALUES ('refused', '{}', 0, NULL, 'rejected', NULL, 0)"
        )


def test_the_outbox_rows_by_state(
    tmp_path: Path, sandbox: SandboxServer, registry: dict[Settings, Backend]
) -> None:
    spool = tmp_path / "outbox.sqlite"
    seed_states(spool)
    metrics = CollectorRegistry()
    register_prometheus(metrics)
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    register_opentelemetry(provider)
    backend = backend_for(sandbox.settings(spool_path=str(spool)))
    assert backend.flush(2)  # nothing it may take: the visit's first row is elsewhere
    expected = {"pending": 1, "leased": 1, "dead": 1}
    s = backend.stats()
    assert {state: s[f"outbox_{state}"] for state in expected} == expected
    assert s["spooled"] == 2  # as before: pending and leased
    r = read()
    assert (r.outbox, r.outbox_states) == (2, expected)
    for state, n in expected.items():
        assert value(metrics, "affy_outbox_events", state=state) == n
    try:
        data = reader.get_metrics_data()
        assert data is not None
        points = {
            point.attributes["state"]: point.value
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == "affy.outbox.size"
            for point in metric.data.data_points
        }
        assert points == expected
    finally:
        provider.shutdown()
