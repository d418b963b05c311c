"""The attempt step: one send, classified. Real answers through the real client over an
in-memory transport (``httpx.MockTransport``), so the client's error mapping is covered
too; the breaker and counters are the real ones."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from affy_middleware import AffyClient
from affy_middleware._settings import Settings
from affy_middleware._wire import Event, lead_value, payment_body
from affy_middleware.delivery.attempt import Attempt, Rule, Verdict, classify
from affy_middleware.delivery.breaker import RetryPolicy
from affy_middleware.delivery.counters import Counters
from affy_middleware.delivery.logs import LogLimiter

SETTINGS = Settings(client_id=1, api_url="http://127.0.0.1:9", retry_deadline=60.0)
POLICY = RetryPolicy(base=0.5, cap=4.0, failure_threshold=3, min_pause=0.1)

Handler = Callable[[httpx.Request], httpx.Response]


def payment(created_at: float | None = None) -> Event:
    body = payment_body(1, session_id="s1", lead_value=lead_value("5.00"))
    if created_at is None:
        return Event(kind="payment", body=body, order_key="s1")
    return Event(kind="payment", body=body, order_key="s1", created_at=created_at)


def answer(status: int, **headers: str) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        if status < 300:
            return httpx.Response(status, json={"success": True, "leadId": 1})
        body = {"error": "Error", "message": f"status {status}"}
        return httpx.Response(status, headers=headers, json=body)

    return handle


def unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.fixture
def counters() -> Counters:
    return Counters()


@pytest.fixture
def attempt_with(counters: Counters) -> Iterator[Callable[[Handler], Attempt]]:
    clients: list[AffyClient] = []

    def make(handler: Handler) -> Attempt:
        client = AffyClient(SETTINGS, transport=httpx.MockTransport(handler))
        clients.append(client)
        return Attempt(SETTINGS, POLICY, counters, LogLimiter(), client.send_event)

    yield make
    for client in clients:
        client.close()


@pytest.mark.parametrize(
    ("handler", "verdict", "counted"),
    [
        pytest.param(answer(201), Verdict.DELIVERED, {"sent": 1}, id="201-delivered"),
        pytest.param(answer(400), Verdict.REJECTED, {"dropped_rejected": 1}, id="400-rejected"),
        pytest.param(answer(422), Verdict.REJECTED, {"dropped_rejected": 1}, id="422-rejected"),
        # Today a 404 (unknown click) is final; issue 10 makes it a "not yet" (one more rule).
        pytest.param(answer(404), Verdict.REJECTED, {"dropped_rejected": 1}, id="404-rejected"),
        # Today 401/403 are final too; DESIGN 4 wants them kept and paused (a later rule).
        pytest.param(answer(401), Verdict.REJECTED, {"dropped_rejected": 1}, id="401-rejected"),
        pytest.param(answer(408), Verdict.RETRY, {}, id="408-retry"),
        pytest.param(answer(500), Verdict.RETRY, {}, id="500-retry"),
        pytest.param(answer(503), Verdict.RETRY, {}, id="503-retry"),
        pytest.param(unreachable, Verdict.RETRY, {}, id="network-retry"),
        pytest.param(
            answer(429, **{"Retry-After": "2"}), Verdict.PAUSE, {"pauses": 1}, id="429-pause"
        ),
        pytest.param(
            answer(503, **{"Retry-After": "2"}), Verdict.PAUSE, {"pauses": 1}, id="503-after-pause"
        ),
    ],
)
def test_one_attempt_is_classified(
    attempt_with: Callable[[Handler], Attempt],
    counters: Counters,
    handler: Handler,
    verdict: Verdict,
    counted: dict[str, int],
) -> None:
    attempt = attempt_with(handler)
    before = time.monotonic()
    outcome = attempt.run(payment(), attempts=0, probe=False)
    assert outcome.verdict is verdict
    assert outcome.final is (verdict in (Verdict.DELIVERED, Verdict.REJECTED))
    values = counters.snapshot()
    assert values["failed"] == (0 if verdict is Verdict.DELIVERED else 1)
    assert values["retried"] == 0
    for name, n in counted.items():
        assert values[name] == n
    if verdict is Verdict.RETRY:  # this event alone backs off: full jitter in [0, base]
        assert before <= outcome.at <= time.monotonic() + POLICY.base
        assert attempt.try_turn() is False  # the pipeline is open, and this is no probe
    if verdict is Verdict.PAUSE:  # Retry-After: 2 s for everyone
        assert outcome.at == pytest.approx(before + 2.0, abs=0.5)
        assert attempt.paused and attempt.try_turn() is None


def test_failures_in_a_row_pause_the_pipeline_then_one_probe_reopens_it(
    attempt_with: Callable[[Handler], Attempt], counters: Counters
) -> None:
    status = [503]
    attempt = attempt_with(lambda request: answer(status[0])(request))
    outcomes = [attempt.run(payment(), attempts=n, probe=False) for n in range(3)]
    assert [o.verdict for o in outcomes] == [Verdict.RETRY, Verdict.RETRY, Verdict.PAUSE]
    assert counters.snapshot()["retried"] == 2 and counters.snapshot()["pauses"] == 1
    assert attempt.try_turn() is None  # paused: nothing goes out
    status[0] = 201
    time.sleep(max(0.0, outcomes[-1].at - time.monotonic()))  # the pause the outcome gave
    assert attempt.try_turn() is True  # the probe
    assert attempt.try_turn() is None  # the others wait for the probe's answer
    assert attempt.run(payment(), attempts=0, probe=True).verdict is Verdict.DELIVERED
    assert attempt.try_turn() is False and not attempt.paused


def test_an_expired_event_is_given_up_without_a_request(
    attempt_with: Callable[[Handler], Attempt], counters: Counters
) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return answer(201)(request)

    attempt = attempt_with(handler)
    outcome = attempt.run(payment(created_at=time.time() - 120), attempts=3, probe=False)
    assert outcome.verdict is Verdict.EXPIRED and outcome.final
    assert calls == [] and counters.snapshot()["dropped_expired"] == 1


def test_a_bug_in_the_sender_is_rejected_and_leaves_the_breaker_alone(
    counters: Counters,
) -> None:
    def broken(event: Event) -> object:
        raise RuntimeError("a bug of ours")

    attempt = Attempt(SETTINGS, POLICY, counters, LogLimiter(), broken)
    assert attempt.run(payment(), attempts=0, probe=False).verdict is Verdict.REJECTED
    assert not attempt.paused and counters.snapshot()["dropped_rejected"] == 1


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        pytest.param(RuntimeError("bug"), Verdict.REJECTED, id="not-an-affy-error"),
        pytest.param(ValueError("bad"), Verdict.REJECTED, id="value-error"),
    ],
)
def test_classify_defaults_to_rejected(error: Exception, verdict: Verdict) -> None:
    assert classify(error).verdict is verdict


def test_a_new_kind_of_not_yet_is_one_more_rule(
    attempt_with: Callable[[Handler], Attempt],
    counters: Counters,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # How issue 10's "lead before its click" slots in: a row in the table, nothing else.
    from affy_middleware._errors import AffyNotFoundError
    from affy_middleware.delivery import attempt as attempt_module

    not_yet = Rule(lambda e: isinstance(e, AffyNotFoundError), Verdict.RETRY, outage=False)
    monkeypatch.setattr(attempt_module, "RULES", (not_yet, *attempt_module.RULES))
    attempt = attempt_with(answer(404))
    outcomes = [attempt.run(payment(), attempts=n, probe=False) for n in range(5)]
    assert {o.verdict for o in outcomes} == {Verdict.RETRY}
    assert not attempt.paused  # AFFY answered every time: no pipeline pause
    assert counters.snapshot()["dropped_rejected"] == 0
