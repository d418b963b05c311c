"""``health()`` read from the process's real backends, against the sandbox over HTTP."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator

import pytest
from _backends import only_these_backends
from _delivery import OVER_HTTP, payment

from affy_middleware import Health, Settings, health
from affy_middleware import _health as health_module
from affy_middleware._wire import Event
from affy_middleware.delivery import Backend, make_backend
from affy_middleware.sandbox import SandboxServer


@pytest.fixture
def registry() -> Iterator[dict[Settings, Backend]]:
    """Only this test's backends, and a ``health()`` that has seen nothing yet."""
    with only_these_backends() as backends:
        health_module._watch = health_module._Watch()
        yield backends


def add(registry: dict[Settings, Backend], settings: Settings) -> Backend:
    backend = registry[settings] = make_backend(settings, retry_policy=OVER_HTTP)
    return backend


def test_through_an_outage_ok_then_failing_then_ok_again(
    sandbox: SandboxServer, registry: dict[Settings, Backend]
) -> None:
    assert health().status == "ok" and health().why == "no event reported yet in this process"
    backend = add(registry, sandbox.settings(queue_size=100))
    for i in range(3):
        assert backend.submit(payment(f"sess{i}"))
    assert backend.flush(10)
    before = health()
    assert (before.status, before.why, before.queue_depth) == ("ok", "delivering", 0)
    assert before.oldest_undelivered_age is None  # nothing waiting
    assert before.queue_capacity == 100 and before.last_success is not None

    sandbox.set_faults(outage_seconds=600)
    for i in range(3, 8):
        assert backend.submit(payment(f"sess{i}"))
    assert backend.flush(1.5) is False  # five 503s in a row: the pipeline pauses
    during = health()
    assert during.status == "failing" and during.paused and not during.ok
    assert "delivery is paused" in during.why
    assert during.queue_depth == 5 and during.dropped == {}
    assert during.oldest_undelivered_age is not None
    assert 0 <= during.oldest_undelivered_age < 60

    sandbox.set_faults()  # the outage ends
    assert backend.flush(15)
    after = health()
    assert (after.status, after.paused, after.queue_depth) == ("ok", False, 0)
    assert after.oldest_undelivered_age is None
    assert after.last_success is not None and after.last_success >= before.last_success
    assert len(sandbox.events()) == 8


def test_the_oldest_undelivered_event_s_age(
    sandbox: SandboxServer, registry: dict[Settings, Backend]
) -> None:
    backend = add(registry, sandbox.settings(max_in_flight=1))
    sandbox.set_faults(outage_seconds=600)
    now = time.time()
    for i, age in enumerate([100, 500, 50]):  # one visit each: in flight, ready, ready
        event = payment(f"sess{i}")
        assert backend.submit(dataclasses.replace(event, created_at=now - age))
    assert backend.flush(0.5) is False
    age = health().oldest_undelivered_age
    assert age is not None and 500 <= age < 560
    sandbox.set_faults()
    assert backend.flush(15)
    assert health().oldest_undelivered_age is None


def test_a_full_queue_fails_and_its_drops_degrade_for_the_window(
    sandbox: SandboxServer, registry: dict[Settings, Backend]
) -> None:
    backend = add(registry, sandbox.settings(queue_size=2, max_in_flight=1))
    sandbox.set_faults(outage_seconds=600)
    accepted = [backend.submit(payment(f"sess{i}")) for i in range(5)]
    assert accepted.count(False) == 3
    full = health()
    assert full.status == "failing" and "the queue is full (2 events)" in full.why
    assert full.dropped == {"queue_full": 3} and "3 queue_full" in full.why

    sandbox.set_faults()
    assert backend.flush(15)
    recovered = health()  # within the window the drops still count
    assert recovered.status == "degraded" and recovered.dropped == {"queue_full": 3}
    last = health(window=0)
    assert last.status == "ok", last  # nothing dropped since the last call


def test_rejected_events_degrade_and_nothing_of_the_visitor_shows(
    sandbox: SandboxServer, registry: dict[Settings, Backend]
) -> None:
    backend = add(registry, sandbox.settings())
    email = "visitor@example.com"
    bad = Event(kind="payment", body={"clientId": 1, "customerEmail": email}, order_key="v1")
    assert backend.submit(bad)
    assert backend.flush(10)
    report = health()
    assert report.status == "degraded" and report.dropped == {"rejected": 1}
    text = json.dumps(report.as_dict())
    assert email not in text and "v1" not in text


@pytest.mark.parametrize(
    ("settings", "status", "why"),
    [
        pytest.param(Settings(client_id=None), "degraded", "no AFFY_CLIENT_ID", id="no-client"),
        pytest.param(Settings(client_id=1, enabled=False), "ok", "switched off", id="disabled"),
    ],
)
def test_tracking_off_is_said(
    registry: dict[Settings, Backend], settings: Settings, status: str, why: str
) -> None:
    registry[settings] = make_backend(settings)
    report = health()
    assert report.status == status and why in report.why
    assert report.queue_capacity == 0


def test_a_backend_whose_stats_fail_gives_a_failing_answer_not_an_exception(
    registry: dict[Settings, Backend],
) -> None:
    class Broken(Backend):
        def submit(self, event: Event) -> bool:
            return False

        def stats(self) -> dict[str, int]:
            raise RuntimeError("boom")

    registry[Settings(client_id=1)] = Broken()
    report = health()
    assert isinstance(report, Health)
    assert (report.status, report.why) == ("failing", "health check error: RuntimeError")
