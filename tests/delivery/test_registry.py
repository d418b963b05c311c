"""The registry: one backend per Settings, the module-level flush/shutdown/stats, and
``capture()`` installing a recording backend over all of them."""

from __future__ import annotations

import pytest
from _delivery import payment

from affy_middleware import delivery
from affy_middleware._settings import Settings
from affy_middleware._wire import Event
from affy_middleware.delivery import (
    Backend,
    CaptureBackend,
    InlineBackend,
    OffBackend,
    ThreadBackend,
    capture,
    make_backend,
)
from affy_middleware.delivery.support.counters import empty_stats


@pytest.fixture
def settings() -> Settings:
    return Settings(client_id=1, api_url="http://127.0.0.1:9", flush_timeout=2.0)


def test_capture_takes_events_instead_of_sending(settings: Settings) -> None:
    with capture() as events:
        assert delivery.backend_for(settings).submit(payment("a"))
        assert delivery.backend_for(settings.replace(client_id=None)).submit(payment("b"))
        assert delivery.flush(0.1)
    assert [e.order_key for e in events] == ["a", "b"]
    real = delivery.backend_for(settings)  # the capture is gone: the real backend again
    assert isinstance(real, ThreadBackend) and real.stats()["enqueued"] == 0


def test_module_level_functions_cover_every_backend(settings: Settings) -> None:
    s = settings.replace(delivery="sync", api_url="http://127.0.0.1:9", timeout=0.2)
    d = delivery.backend_for(s)
    assert delivery.backend_for(s) is d and d.blocks
    assert set(delivery.stats()) >= {
        "enqueued",
        "sent",
        "retried",
        "failed",
        "dropped_queue_full",
        "dropped_rejected",
        "dropped_expired",
        "dropped",
        "queued",
        "in_flight",
        "spooled",
    }
    assert delivery.flush(0.5) is True
    delivery.shutdown(0.5)


@pytest.mark.parametrize(
    ("changes", "kind", "blocks"),
    [
        pytest.param({}, ThreadBackend, False, id="thread"),
        pytest.param({"delivery": "sync"}, InlineBackend, True, id="sync"),
        pytest.param({"delivery": "off"}, OffBackend, False, id="off"),
        pytest.param({"client_id": None}, OffBackend, False, id="no-client-id"),
        pytest.param({"enabled": False}, OffBackend, False, id="disabled"),
    ],
)
def test_one_factory_picks_the_backend_from_the_settings(
    settings: Settings, changes: dict[str, object], kind: type[Backend], blocks: bool
) -> None:
    backend = make_backend(settings.replace(**changes))
    assert type(backend) is kind and backend.blocks is blocks
    assert set(backend.stats()) == set(empty_stats())  # the keys of stats(), every one


def test_capture_is_a_backend_that_records(settings: Settings) -> None:
    recorded: list[Event] = []
    with delivery.installed(CaptureBackend(recorded)) as backend:
        assert delivery.backend_for(settings) is backend
        assert delivery.backend_for(settings.replace(delivery="sync")) is backend
        assert backend.submit(payment("a")) and not backend.blocks
    assert [e.order_key for e in recorded] == ["a"]
    assert delivery.backend_for(settings) is not backend
