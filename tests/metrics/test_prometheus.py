"""Prometheus: the collector read back from a real ``prometheus_client`` registry."""

from __future__ import annotations

import pytest
from _journey import journey
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from affy_middleware import Settings, delivery, flush
from affy_middleware._wire import Event
from affy_middleware.delivery import Backend, backend_for
from affy_middleware.delivery.support.timings import BUCKETS
from affy_middleware.metrics import register_prometheus
from affy_middleware.sandbox import SandboxServer


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def events(registry: CollectorRegistry, outcome: str) -> float:
    """``affy_events_total`` of one outcome, summed over the kinds."""
    kinds = ("click", "registration", "registration_lead", "payment")
    found = [value(registry, "affy_events_total", kind=k, outcome=outcome) for k in kinds]
    assert None not in found  # every kind is exported, at 0 if need be
    return sum(v or 0.0 for v in found)


def durations(registry: CollectorRegistry, kind: str, status_class: str) -> tuple[float, float]:
    """``affy_delivery_seconds``'s count and sum for one kind and status class."""
    labels = {"kind": kind, "status_class": status_class}
    count = registry.get_sample_value("affy_delivery_seconds_count", labels) or 0.0
    return count, registry.get_sample_value("affy_delivery_seconds_sum", labels) or 0.0


def test_a_journey_is_counted(sandbox: SandboxServer, registry: dict[Settings, Backend]) -> None:
    settings = sandbox.settings(queue_size=500)
    metrics = CollectorRegistry()
    register_prometheus(metrics)
    # The histogram covers the process (earlier tests' calls too): compare before/after.
    before = {kind: durations(metrics, kind, "2xx") for kind in ("click", "payment")}
    journey(settings)
    assert flush(10)
    register_prometheus(metrics)  # twice on one registry: registered once
    assert events(metrics, "delivered") == 3
    for kind in ("click", "registration", "payment"):  # by kind, as the journey sent them
        assert value(metrics, "affy_events_total", kind=kind, outcome="delivered") == 1
    assert value(metrics, "affy_events_total", kind="registration_lead", outcome="delivered") == 0
    assert events(metrics, "rejected") == 0
    assert events(metrics, "dropped") == 0
    assert value(metrics, "affy_events_accepted_total") == 3
    assert value(metrics, "affy_delivery_retries_total") == 0
    assert value(metrics, "affy_pipeline_pauses_total") == 0
    reasons = ("queue_full", "rejected", "click_unknown", "expired", "shutdown", "unsent")
    for reason in (*reasons, "malformed"):
        assert value(metrics, "affy_events_dropped_total", reason=reason) == 0
    assert value(metrics, "affy_queue_events") == 0
    assert value(metrics, "affy_queue_capacity_events") == 500
    assert value(metrics, "affy_pipeline_paused") == 0
    assert value(metrics, "affy_outbox_events") is None  # no outbox configured
    assert [e["kind"] for e in sandbox.events()] == ["click", "registration", "payment"]
    for kind in ("click", "payment"):  # one call each, timed: 0 < its seconds < the timeout
        count, total = durations(metrics, kind, "2xx")
        assert count == before[kind][0] + 1
        assert 0 < total - before[kind][1] < settings.timeout
    labels = {"kind": "click", "status_class": "2xx", "le": "+Inf"}
    inf = value(metrics, "affy_delivery_seconds_bucket", **labels)
    assert inf == durations(metrics, "click", "2xx")[0]

    # Read at scrape time: a later event shows without registering again.
    journey(settings, affiliate="partner-8")
    assert flush(10)
    assert events(metrics, "delivered") == 6


def test_drops_paused_and_queued_during_an_outage_and_no_visitor_data(
    sandbox: SandboxServer, registry: dict[Settings, Backend]
) -> None:
    settings = sandbox.settings(queue_size=2, max_in_flight=1)
    sandbox.set_faults(outage_seconds=600)
    journey(settings, affiliate="visitor-controlled-ref")
    assert flush(1.5) is False  # the outage holds two events; the third did not fit
    metrics = CollectorRegistry()
    register_prometheus(metrics)
    assert value(metrics, "affy_events_dropped_total", reason="queue_full") == 1
    assert events(metrics, "dropped") == 1
    # The journey's third event, the payment, is the one that did not fit.
    assert value(metrics, "affy_events_total", kind="payment", outcome="dropped") == 1
    assert value(metrics, "affy_queue_events") == 2
    assert value(metrics, "affy_queue_capacity_events") == 2
    text = generate_latest(metrics).decode()
    for visitor_data in ("visitor-controlled-ref", "ann@example.com", "sess"):
        assert visitor_data not in text
    words = {"click", "registration", "registration_lead", "payment"}
    words |= {"delivered", "rejected", "dropped", "click_unknown", "expired", "shutdown"}
    words |= {"queue_full", "unsent", "malformed", "unknown", "2xx", "3xx", "4xx", "5xx", "error"}
    words |= {repr(float(b)) for b in BUCKETS} | {"+Inf"}  # the histogram's ``le``
    for family in metrics.collect():  # every label value is one of a fixed set of words
        for sample in family.samples:
            assert set(sample.labels.values()) <= words, sample
    sandbox.set_faults()
    backend_for(settings).close(0.0)


def test_rejected_events_count_as_rejected(
    sandbox: SandboxServer, registry: dict[Settings, Backend]
) -> None:
    metrics = CollectorRegistry()
    register_prometheus(metrics)
    before = durations(metrics, "payment", "4xx")[0]
    backend = backend_for(sandbox.settings())
    assert backend.submit(Event(kind="payment", body={"clientId": 1}, order_key="x1"))
    assert backend.flush(10)
    assert durations(metrics, "payment", "4xx")[0] == before + 1  # AFFY's 400, timed
    assert events(metrics, "rejected") == 1
    assert value(metrics, "affy_events_total", kind="payment", outcome="rejected") == 1
    assert value(metrics, "affy_events_dropped_total", reason="rejected") == 1


def test_registered_on_the_default_registry_at_set_up() -> None:
    """The library's first set-up registered the collector, since prometheus_client is
    installed here (the test extra); tests/delivery/test_import_side_effects.py shows that
    importing alone does not."""
    delivery.set_up()
    assert value(REGISTRY, "affy_queue_capacity_events") is not None


@pytest.mark.parametrize("broken", ["stats"])
def test_a_broken_backend_does_not_break_the_scrape(
    registry: dict[Settings, Backend], broken: str
) -> None:
    class Broken(Backend):
        def submit(self, event: Event) -> bool:
            return False

        def stats(self) -> dict[str, int]:
            raise RuntimeError(broken)

    registry[Settings(client_id=1)] = Broken()
    metrics = CollectorRegistry()
    register_prometheus(metrics)
    assert events(metrics, "delivered") == 0
