"""Delivery over real HTTP against the sandbox, with its fault injection: outage and
recovery, 429 + Retry-After, 4xx validation errors, order and the Idempotency-Key."""

from __future__ import annotations

import logging

import pytest
from _delivery import OVER_HTTP, payment

from affy_middleware._wire import Event, click_body
from affy_middleware.delivery import Backend, make_backend
from affy_middleware.delivery.sending.breaker import RetryPolicy
from affy_middleware.sandbox import SandboxServer


def click(i: int, session: str | None = None) -> Event:
    session = session or f"sess{i}"
    body = click_body(1, affiliate_reference="partner1", click_id=f"click{i}", session_id=session)
    return Event(kind="click", body=body, order_key=session)


def test_events_arrive_in_order_with_a_stable_idempotency_key(
    sandbox: SandboxServer, made: list[Backend]
) -> None:
    d = make_backend(sandbox.settings(max_in_flight=4))
    made.append(d)
    sent: list[Event] = []
    for i in range(20):
        sent += [click(i), payment(f"sess{i}")]
    assert all(d.submit(e) for e in sent)
    assert d.flush(10)
    events = sandbox.events()
    assert sorted(e["idempotency_key"] for e in events) == sorted(e.event_id for e in sent)
    for i in range(20):  # click before payment for every visit
        kinds = [e["kind"] for e in events if e["session_id"] == f"sess{i}"]
        assert kinds == ["click", "payment"]
    assert all(e["affiliate_reference"] == "partner1" for e in sandbox.events("payment"))
    assert sandbox.duplicates() == 0


def test_outage_then_recovery_delivers_everything_once_with_bounded_requests(
    sandbox: SandboxServer, made: list[Backend], capsys: pytest.CaptureFixture[str]
) -> None:
    outage = 2.0
    policy = RetryPolicy(base=0.25, cap=1.0)  # default cap is 30 s; shorter keeps this fast
    d = make_backend(sandbox.settings(max_in_flight=8), retry_policy=policy)
    made.append(d)
    sandbox.set_faults(outage_seconds=outage)
    first = [payment(f"sess{i}") for i in range(30)]
    assert all(d.submit(e) for e in first)
    assert d.flush(outage / 2) is False  # mid-outage: nothing can get through
    second = [payment(f"sess{i}") for i in range(30, 60)]
    assert all(d.submit(e) for e in second)
    assert d.flush(15)

    events = sandbox.events()
    assert sorted(e["idempotency_key"] for e in events) == sorted(
        e.event_id for e in first + second
    )
    assert sandbox.duplicates() == 0
    failed = [r for r in sandbox.requests() if r["status"] == 503]
    # 60 events, 8 in flight: per-event retries would make hundreds of requests in 2 s.
    assert 1 <= len(failed) <= 8 + 12
    stats = d.stats()
    assert stats["sent"] == 60 and stats["dropped"] == 0 and stats["pauses"] >= 1
    with capsys.disabled():
        print(
            f"\n[outage {outage} s] requests during the outage: {len(failed)}, "
            f"pauses: {stats['pauses']}, retried: {stats['retried']}"
        )


@pytest.mark.parametrize("in_flight", [1, 8])
def test_429_with_retry_after_holds_every_request(
    sandbox: SandboxServer, made: list[Backend], in_flight: int
) -> None:
    d = make_backend(sandbox.settings(max_in_flight=in_flight))
    made.append(d)
    sandbox.set_faults(rate_limit=1, retry_after=2)
    for i in range(10):
        d.submit(payment(f"sess{i}"))
    assert d.flush(10)
    requests = sandbox.requests()
    limited = [r for r in requests if r["status"] == 429]
    assert len(limited) == 1
    t429 = limited[0]["time"]
    # Requests already on the wire when the 429 came back may land a moment after it.
    slack = 0.0 if in_flight == 1 else 0.1
    early = [r for r in requests if t429 + slack < r["time"] < t429 + 2.0]
    assert early == []
    assert len(sandbox.events()) == 10 and sandbox.duplicates() == 0


def test_validation_errors_are_dropped_counted_logged_once(
    sandbox: SandboxServer, made: list[Backend], caplog: pytest.LogCaptureFixture
) -> None:
    d = make_backend(sandbox.settings(max_in_flight=2))
    made.append(d)
    caplog.set_level(logging.WARNING, "affy_middleware")
    bad = [
        Event(kind="payment", body={"clientId": 1, "leadType": "PAYMENT"}, order_key=f"b{i}")
        for i in range(3)
    ]
    good = [payment(f"sess{i}") for i in range(5)]
    for e in [bad[0], good[0], bad[1], *good[1:], bad[2]]:
        assert d.submit(e)
    assert d.flush(10)
    assert len(sandbox.events()) == 5
    rejected = [r for r in sandbox.requests() if 400 <= r["status"] < 500]
    assert len(rejected) == 3  # one request each, never retried
    stats = d.stats()
    assert stats["dropped_rejected"] == 3 and stats["sent"] == 5 and stats["retried"] == 0
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(lines) == 1 and "400" in lines[0]


def test_random_errors_are_retried_until_delivered(
    sandbox: SandboxServer, made: list[Backend]
) -> None:
    d = make_backend(sandbox.settings(), retry_policy=OVER_HTTP)
    made.append(d)
    sandbox.set_faults(error_rate=0.3, error_status=502)
    sent = [payment(f"sess{i}") for i in range(40)]
    for e in sent:
        d.submit(e)
    assert d.flush(20)
    assert sorted(e["idempotency_key"] for e in sandbox.events()) == sorted(
        e.event_id for e in sent
    )
    assert d.stats()["retried"] >= 1
