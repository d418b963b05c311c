"""Prometheus: a collector that reads ``stats()`` when the registry is scraped.

Imported only by :func:`affy_middleware.metrics.register_prometheus` (needs
``prometheus_client``, the ``affy_middleware[prometheus]`` extra).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry

from ..delivery.support.timings import BUCKETS, TIMINGS
from ._readings import DROP_REASONS, STATES, read

__all__ = ["AffyCollector", "register"]


class AffyCollector(Collector):
    """The delivery metrics of this process, read at scrape time (see ``docs/metrics.md``)."""

    def collect(self) -> Iterator[Metric]:
        r = read()
        events = CounterMetricFamily(
            "affy_events",
            "Events finished, by kind and outcome: delivered to AFFY, rejected by it, dropped.",
            labels=["kind", "outcome"],
        )
        for (kind, outcome), value in r.events.items():
            events.add_metric([kind, outcome], value)
        yield events
        dropped = CounterMetricFamily(
            "affy_events_dropped", "Events given up, by reason.", labels=["reason"]
        )
        for reason in DROP_REASONS:
            dropped.add_metric([reason], r.dropped[reason])
        yield dropped
        yield CounterMetricFamily(
            "affy_events_accepted", "Events accepted for delivery.", value=r.accepted
        )
        yield CounterMetricFamily(
            "affy_delivery_retries", "Calls to AFFY that failed and were retried.", value=r.retried
        )
        yield CounterMetricFamily(
            "affy_pipeline_pauses", "Times delivery paused after failures.", value=r.pauses
        )
        yield GaugeMetricFamily(
            "affy_queue_events", "Events accepted and not yet delivered.", value=r.queue
        )
        yield GaugeMetricFamily(
            "affy_queue_capacity_events", "Room in the delivery queues.", value=r.capacity
        )
        yield GaugeMetricFamily(
            "affy_pipeline_paused", "1 while delivery is paused after failures.", value=r.paused
        )
        if r.has_outbox:
            outbox = GaugeMetricFamily(
                "affy_outbox_events",
                "Rows in the outbox (all processes), by state: pending, leased, dead.",
                labels=["state"],
            )
            for state in STATES:
                outbox.add_metric([state], r.outbox_states[state])
            yield outbox
        yield delivery_seconds()


def delivery_seconds() -> HistogramMetricFamily:
    """``affy_delivery_seconds``: one call to AFFY, by kind and status class."""
    family = HistogramMetricFamily(
        "affy_delivery_seconds",
        "Seconds one call to AFFY took, by kind and status class (2xx..5xx, error).",
        labels=["kind", "status_class"],
    )
    bounds = [*(repr(float(b)) for b in BUCKETS), "+Inf"]
    for (kind, klass), (cumulative, total) in sorted(TIMINGS.snapshot().items()):
        family.add_metric([kind, klass], list(zip(bounds, cumulative, strict=True)), total)
    return family


_lock = threading.Lock()
_registered: weakref.WeakKeyDictionary[CollectorRegistry, AffyCollector] = (
    weakref.WeakKeyDictionary()
)


def register(
    registry: CollectorRegistry | None = None, sample_interval: float | None = None
) -> AffyCollector:
    """Register the collector once per registry (default: ``prometheus_client.REGISTRY``);
    in multiprocess mode, also copy ``stats()`` into the shared files."""
    if sample_interval is not None or _multiprocess_mode():
        from . import multiprocess

        multiprocess.start(sample_interval or multiprocess.DEFAULT_INTERVAL)
    target = REGISTRY if registry is None else registry
    with _lock:
        collector = _registered.get(target)
        if collector is None:
            collector = _registered[target] = AffyCollector()
            target.register(collector)
        return collector


def _multiprocess_mode() -> bool:
    """The variable prometheus_client reads (its old lower-case spelling is deprecated)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
