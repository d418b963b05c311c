"""Delivery metrics for the dashboards operators already have: Prometheus, OpenTelemetry.

Both read the counters of ``affy_middleware.stats()`` when they are collected, so the
request path pays nothing. The library's first set-up (``delivery.set_up``: the first
middleware, backend, ``flush()`` or ``stats()``) registers them by itself when either
library is installed (:func:`register_installed`; importing registers nothing). Call the
functions below for a registry or a meter provider of your own::

    from prometheus_client import CollectorRegistry
    from affy_middleware.metrics import register_prometheus

    registry = CollectorRegistry()
    register_prometheus(registry)

Metric names, labels and the gunicorn multiprocess mode: ``docs/metrics.md``.
"""

from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING

from ._readings import Readings, read

if TYPE_CHECKING:  # only for the annotations: neither library is needed to import this
    from opentelemetry.metrics import MeterProvider
    from prometheus_client.registry import CollectorRegistry

__all__ = [
    "Readings",
    "read",
    "register_installed",
    "register_opentelemetry",
    "register_prometheus",
]


def register_prometheus(
    registry: CollectorRegistry | None = None, *, sample_interval: float | None = None
) -> None:
    """Publish the metrics on ``registry`` (default: ``prometheus_client.REGISTRY``).
    Registering twice on one registry does nothing. Needs ``prometheus_client``.

    With ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn), each process also copies its
    counters into the shared files every ``sample_interval`` seconds (default 5).
    """
    from . import prometheus

    prometheus.register(registry, sample_interval)


def register_opentelemetry(meter_provider: MeterProvider | None = None) -> None:
    """Create the ``affy.*`` observable instruments on ``meter_provider`` (default: the
    global provider, which hands them to the app's provider once it is set). Needs
    ``opentelemetry-api``."""
    from . import otel

    otel.register(meter_provider)


def register_installed() -> None:
    """Register with whichever of the two libraries is installed (at the library's first
    set-up); ``AFFY_METRICS=off`` opts out. Never raises."""
    if os.environ.get("AFFY_METRICS", "").strip().lower() in ("off", "0", "false", "no"):
        return
    for module, register in (
        ("prometheus_client", register_prometheus),
        ("opentelemetry.metrics", register_opentelemetry),
    ):
        try:
            if importlib.util.find_spec(module) is not None:
                register()
        except Exception:  # a broken metrics library must not stop the app from starting
            continue
