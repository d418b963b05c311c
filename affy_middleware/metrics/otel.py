"""OpenTelemetry: observable instruments whose callbacks read ``stats()`` at collection.

Imported only by :func:`affy_middleware.metrics.register_opentelemetry` (needs
``opentelemetry-api``). Without an SDK meter provider configured by the app the
instruments are no-ops; the API's global provider hands them over once the app sets one.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation

from .. import __version__
from ..delivery.support.timings import TIMINGS
from ._readings import DROP_REASONS, STATES, Readings, read

__all__ = ["register"]

Callback = Callable[[CallbackOptions], Iterable[Observation]]


def _observe(pick: Callable[[Readings], Iterable[Observation]]) -> Callback:
    def callback(options: CallbackOptions) -> Iterable[Observation]:
        try:
            return list(pick(read()))
        except Exception:  # a collection must not fail because of us
            return []

    return callback


def _duration(meter: Meter) -> None:
    """``affy.delivery.duration``: a histogram takes single measurements, so the timings
    hand each one over as it is recorded (on the delivery thread)."""
    histogram = meter.create_histogram(
        "affy.delivery.duration",
        unit="s",
        description="Seconds one call to AFFY took, by kind and status class.",
    )

    def listener(kind: str, klass: str, seconds: float) -> None:
        histogram.record(seconds, {"kind": kind, "status_class": klass})

    TIMINGS.listeners.append(listener)


def _outbox_states(r: Readings) -> list[Observation]:
    if not r.has_outbox:
        return []
    return [Observation(r.outbox_states[state], {"state": state}) for state in STATES]


def _instruments(meter: Meter) -> None:
    _duration(meter)
    meter.create_observable_counter(
        "affy.events",
        [
            _observe(
                lambda r: [
                    Observation(n, {"kind": k, "outcome": o}) for (k, o), n in r.events.items()
                ]
            )
        ],
        unit="{event}",
        description="Events finished, by kind and outcome: delivered to AFFY, rejected, dropped.",
    )
    meter.create_observable_counter(
        "affy.events.dropped",
        [_observe(lambda r: [Observation(r.dropped[x], {"reason": x}) for x in DROP_REASONS])],
        unit="{event}",
        description="Events given up, by reason.",
    )
    meter.create_observable_counter(
        "affy.events.accepted",
        [_observe(lambda r: [Observation(r.accepted)])],
        unit="{event}",
        description="Events accepted for delivery.",
    )
    meter.create_observable_counter(
        "affy.delivery.retries",
        [_observe(lambda r: [Observation(r.retried)])],
        unit="{call}",
        description="Calls to AFFY that failed and were retried.",
    )
    meter.create_observable_counter(
        "affy.pipeline.pauses",
        [_observe(lambda r: [Observation(r.pauses)])],
        unit="{pause}",
        description="Times delivery paused after failures.",
    )
    meter.create_observable_up_down_counter(
        "affy.queue.size",
        [_observe(lambda r: [Observation(r.queue)])],
        unit="{event}",
        description="Events accepted and not yet delivered.",
    )
    meter.create_observable_up_down_counter(
        "affy.queue.capacity",
        [_observe(lambda r: [Observation(r.capacity)])],
        unit="{event}",
        description="Room in the delivery queues.",
    )
    meter.create_observable_gauge(
        "affy.pipeline.paused",
        [_observe(lambda r: [Observation(r.paused)])],
        description="1 while delivery is paused after failures.",
    )
    meter.create_observable_up_down_counter(
        "affy.outbox.size",
        [_observe(_outbox_states)],
        unit="{event}",
        description="Rows in the outbox (all processes), by state: pending, leased, dead.",
    )


_lock = threading.Lock()
_registered: weakref.WeakSet[object] = weakref.WeakSet()
_global_done = False


def register(meter_provider: MeterProvider | None = None) -> None:
    """Create the instruments once per provider (default: the API's global provider)."""
    global _global_done
    with _lock:
        if meter_provider is None:
            if _global_done:
                return
            _global_done = True
            provider = metrics.get_meter_provider()
        else:
            if meter_provider in _registered:
                return
            _registered.add(meter_provider)
            provider = meter_provider
        _instruments(provider.get_meter("affy_middleware", __version__))
