"""OpenTelemetry: the ``affy.*`` instruments collected by an in-memory metric reader."""

from __future__ import annotations

from typing import Any

from _journey import journey
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from affy_middleware import Settings, flush
from affy_middleware.delivery import Backend
from affy_middleware.metrics import register_opentelemetry
from affy_middleware.sandbox import SandboxServer


def collected(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], float]]]:
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, list[tuple[dict[str, Any], float]]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == "affy_middleware"
            for metric in scope.metrics:
                points = found.setdefault(metric.name, [])
                for point in metric.data.data_points:
                    # A histogram's point: its count (its sum is checked apart).
                    number = point.value if hasattr(point, "value") else point.count
                    points.append((dict(point.attributes or {}), number))
    return found


def test_a_journey_is_observed(sandbox: SandboxServer, registry: dict[Settings, Backend]) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        register_opentelemetry(provider)
        register_opentelemetry(provider)  # twice on one provider: instruments made once
        journey(sandbox.settings(queue_size=300))
        assert flush(10)
        found = collected(reader)
        by_kind = {(a["kind"], a["outcome"]): v for a, v in found["affy.events"]}
        # Every kind and outcome, at 0 if need be; and malformed outbox rows of no kind.
        assert len(by_kind) == 4 * 3 + 1 and by_kind["unknown", "dropped"] == 0
        assert {key for key, v in by_kind.items() if v} == {
            ("click", "delivered"),
            ("registration", "delivered"),
            ("payment", "delivered"),
        }
        assert sum(by_kind.values()) == 3
        assert {a["reason"]: v for a, v in found["affy.events.dropped"]} == {
            "queue_full": 0,
            "rejected": 0,
            "click_unknown": 0,
            "expired": 0,
            "shutdown": 0,
            "unsent": 0,
            "malformed": 0,
        }
        assert found["affy.events.accepted"] == [({}, 3)]
        assert found["affy.delivery.retries"] == [({}, 0)]
        assert found["affy.pipeline.pauses"] == [({}, 0)]
        assert found["affy.queue.size"] == [({}, 0)]
        assert found["affy.queue.capacity"] == [({}, 300)]
        assert found["affy.pipeline.paused"] == [({}, 0)]
        assert "affy.outbox.size" not in found  # no outbox: no points
        # One duration per call to AFFY, each of the journey's three a 2xx.
        assert sorted(found["affy.delivery.duration"], key=lambda p: p[0]["kind"]) == [
            ({"kind": kind, "status_class": "2xx"}, 1)
            for kind in ("click", "payment", "registration")
        ]
    finally:
        provider.shutdown()
