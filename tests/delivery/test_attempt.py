"""The attempt step: one send, classified. Real answers through the real client over an
in-memory transport (``httpx.MockTransport``), so the client's error mapping is covered
too; the breaker and counters are the real ones."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from _delivery import payment

from affy_middleware import AffyClient
from affy_middleware._errors import AffyNotFoundError
from affy_middleware._settings import Settings
from affy_middleware._wire import Event
from affy_middleware.client.bounded import MAX_ANSWER
from affy_middleware.delivery.sending.attempt import Attempt, Verdict, classify
from affy_middleware.delivery.sending.breaker import RetryPolicy
from affy_middleware.delivery.support.counters import Counters
from affy_middleware.delivery.support.logs import LogLimiter

SETTINGS = Settings(client_id=1, api_url="http://127.0.0.1:9", retry_deadline=60.0)
POLICY = RetryPolicy(base=0.5, cap=4.0, failure_threshold=3, min_pause=0.1, config_pause=0.3)

Handler = Callable[[httpx.Request], httpx.Response]


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


def redirect(request: httpx.Request) -> httpx.Response:
    return httpx.Response(302, headers={"Location": "https://elsewhere.example/"})


def huge(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b" " * (MAX_ANSWER + 1))


#: The pause a Retry-After of 2 s gives, and the one a refused key or URL gives at once
#: (the breaker's first level: a jittered window of up to ``2 * POLICY.base``).
AFTER_2S = (1.5, 2.5)
AT_ONCE = (POLICY.config_pause - 0.01, 2 * POLICY.base + 0.5)


@pytest.mark.parametrize(
    ("handler", "verdict", "counted", "pause"),
    [
        pytest.param(answer(201), Verdict.DELIVERED, {"sent": 1}, None, id="201-delivered"),
        pytest.param(answer(400), Verdict.REJECTED, {"dropped_rejected": 1}, None, id="400"),
        pytest.param(answer(422), Verdict.REJECTED, {"dropped_rejected": 1}, None, id="422"),
        # AFFY does not know the lead's click yet: this visit alone waits (issue 10).
        pytest.param(answer(404), Verdict.RETRY, {"waiting_for_click": 1}, None, id="404-wait"),
        # Our key or URL is wrong, not the event: keep it, pause everything at once.
        pytest.param(answer(401), Verdict.PAUSE, {"config_errors": 1}, AT_ONCE, id="401"),
        pytest.param(answer(403), Verdict.PAUSE, {"config_errors": 1}, AT_ONCE, id="403"),
        pytest.param(redirect, Verdict.PAUSE, {"config_errors": 1}, AT_ONCE, id="302"),
        pytest.param(answer(408), Verdict.RETRY, {}, None, id="408-retry"),
        pytest.param(answer(500), Verdict.RETRY, {}, None, id="500-retry"),
        pytest.param(answer(503), Verdict.RETRY, {}, None, id="503-retry"),
        pytest.param(unreachable, Verdict.RETRY, {}, None, id="network-retry"),
        # A broken proxy's endless "success" is not a success: kept, not read whole.
        pytest.param(huge, Verdict.PAUSE, {"config_errors": 1}, AT_ONCE, id="too-large"),
        pytest.param(
            answer(429, **{"Retry-After": "2"}), Verdict.PAUSE, {"pauses": 1}, AFTER_2S, id="429"
        ),
        pytest.param(
            answer(503, **{"Retry-After": "2"}), Verdict.PAUSE, {"pauses": 1}, AFTER_2S, id="503"
        ),
    ],
)
def test_one_attempt_is_classified(
    attempt_with: Callable[[Handler], Attempt],
    counters: Counters,
    handler: Handler,
    verdict: Verdict,
    counted: dict[str, int],
    pause: tuple[float, float] | None,
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
    if pause is not None:  # nothing goes out for everyone until the pause ends
        assert before + pause[0] <= outcome.at <= time.monotonic() + pause[1]
        assert attempt.paused and attempt.try_turn() is None
        assert values["pauses"] == 1


def test_a_refused_key_keeps_pausing_until_a_probe_is_accepted(
    attempt_with: Callable[[Handler], Attempt], counters: Counters, caplog: pytest.LogCaptureFixture
) -> None:
    status = [401]
    attempt = attempt_with(lambda request: answer(status[0])(request))
    first = attempt.run(payment(), attempts=0, probe=False)
    assert first.verdict is Verdict.PAUSE and not first.final
    time.sleep(max(0.0, first.at - time.monotonic()))  # the pause the outcome gave
    assert attempt.try_turn() is True  # the probe
    second = attempt.run(payment(), attempts=1, probe=True)
    assert second.verdict is Verdict.PAUSE  # refused again: paused again
    assert "affy doctor" in caplog.text
    assert caplog.text.count("refuses our API key") == 1  # once per interval, not per try
    status[0] = 201
    time.sleep(max(0.0, second.at - time.monotonic()))
    assert attempt.try_turn() is True
    assert attempt.run(payment(), attempts=2, probe=True).verdict is Verdict.DELIVERED
    assert not attempt.paused
    assert counters.snapshot()["dropped_rejected"] == 0


def test_a_refused_key_is_given_up_only_at_the_retry_deadline(
    attempt_with: Callable[[Handler], Attempt], counters: Counters
) -> None:
    attempt = attempt_with(answer(401))
    outcome = attempt.run(payment(created_at=time.time() - 120), attempts=9, probe=True)
    assert outcome.verdict is Verdict.EXPIRED
    assert counters.snapshot()["dropped_expired"] == 1


def test_a_redirect_is_said_loudly_with_its_location(
    attempt_with: Callable[[Handler], Attempt], caplog: pytest.LogCaptureFixture
) -> None:
    attempt_with(redirect).run(payment(), attempts=0, probe=False)
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert "AFFY_API_URL" in errors[0].getMessage()
    assert "https://elsewhere.example/" in errors[0].getMessage()


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


def test_a_404_on_a_click_is_final() -> None:
    click = Event(kind="click", body={"clickId": "c"}, order_key="s")
    assert classify(AffyNotFoundError("no"), click).verdict is Verdict.REJECTED


def test_a_404_on_a_lead_past_the_click_wait_is_final_and_counted(counters: Counters) -> None:
    def unknown_click(event: Event) -> object:
        raise AffyNotFoundError("unknown click id", status_code=404)

    settings = SETTINGS.replace(click_wait=5.0)
    attempt = Attempt(settings, POLICY, counters, LogLimiter(), unknown_click)
    assert attempt.run(payment(), attempts=0, probe=False).verdict is Verdict.RETRY
    old = payment(created_at=time.time() - 6)
    assert attempt.run(old, attempts=5, probe=False).verdict is Verdict.REJECTED
    values = counters.snapshot()
    assert values["dropped_click_unknown"] == 1 and values["waiting_for_click"] == 1
    assert values["dropped_rejected"] == 0
    assert not attempt.paused  # AFFY answered
