"""The click gate: a lead that expects a click goes out only once AFFY knows the click
(issue 10, "leads that overtake their click"). No threads, no network: the status call
is a function, the sender a recorder."""

from __future__ import annotations

import time

import pytest

from affy_middleware._errors import AffyAuthError, AffyNetworkError
from affy_middleware._settings import Settings
from affy_middleware._wire import Event, lead_value, payment_body, registration_body
from affy_middleware.delivery.sending.attempt import Attempt, Verdict
from affy_middleware.delivery.sending.breaker import RetryPolicy
from affy_middleware.delivery.sending.clicks import ClickGate, click_session
from affy_middleware.delivery.support.counters import Counters
from affy_middleware.delivery.support.logs import LogLimiter

SETTINGS = Settings(client_id=1, api_url="http://127.0.0.1:9", click_wait=30.0)
POLICY = RetryPolicy(base=0.5, cap=4.0, failure_threshold=3, min_pause=0.1)


def click(session: str) -> Event:
    return Event("click", {"clickId": f"c-{session}", "sessionId": session}, session)


def lead(session: str, *, expects: bool = True, age: float = 0.0) -> Event:
    body = payment_body(1, session_id=session, lead_value=lead_value("5.00"))
    event = Event("payment", body, session, created_at=time.time() - age)
    event.expects_click = expects
    return event


class Affy:
    """AFFY's status answers (which sessions have their click) and the events sent."""

    def __init__(self) -> None:
        self.clicked: set[str] = set()
        self.asked: list[str] = []
        self.sent: list[Event] = []
        self.status_error: Exception | None = None

    def status(self, session: str) -> bool:
        self.asked.append(session)
        if self.status_error is not None:
            raise self.status_error
        return session in self.clicked

    def send(self, event: Event) -> object:
        self.sent.append(event)
        if event.kind == "click" and event.order_key is not None:
            self.clicked.add(event.order_key)
        return {}


@pytest.fixture
def affy() -> Affy:
    return Affy()


@pytest.fixture
def counters() -> Counters:
    return Counters()


@pytest.fixture
def attempt(affy: Affy, counters: Counters) -> Attempt:
    return Attempt(SETTINGS, POLICY, counters, LogLimiter(), affy.send, affy.status)


def test_a_lead_whose_click_is_not_at_affy_waits_as_a_retry_of_its_visit(
    attempt: Attempt, affy: Affy, counters: Counters
) -> None:
    before = time.monotonic()
    outcome = attempt.run(lead("s1"), attempts=0, probe=False)
    assert outcome.verdict is Verdict.RETRY and not outcome.final
    assert before + 0.2 <= outcome.at <= time.monotonic() + 5.0  # never a busy loop
    assert affy.sent == [] and affy.asked == ["s1"]
    assert counters.snapshot()["waiting_for_click"] == 1
    assert not attempt.paused and attempt.try_turn() is False  # AFFY is up for everyone


def test_once_another_process_delivered_the_click_the_lead_goes_and_is_cached(
    attempt: Attempt, affy: Affy
) -> None:
    affy.clicked.add("s1")  # another worker sent it
    assert attempt.run(lead("s1"), attempts=0, probe=False).verdict is Verdict.DELIVERED
    assert attempt.run(lead("s1"), attempts=0, probe=False).verdict is Verdict.DELIVERED
    assert affy.asked == ["s1"]  # the positive answer is remembered


def test_a_click_this_process_delivered_needs_no_status_call(
    attempt: Attempt, affy: Affy
) -> None:
    assert attempt.run(click("s1"), attempts=0, probe=False).verdict is Verdict.DELIVERED
    assert attempt.run(lead("s1"), attempts=0, probe=False).verdict is Verdict.DELIVERED
    assert affy.asked == []


def test_a_lead_that_expects_no_click_is_never_held(attempt: Attempt, affy: Affy) -> None:
    # e.g. report_payment(session_id=...) from a webhook: an organic session.
    assert attempt.run(lead("s1", expects=False), attempts=0, probe=False).final
    assert affy.asked == [] and len(affy.sent) == 1


def test_past_the_click_wait_a_session_lead_is_sent_anyway_and_counted(
    attempt: Attempt, affy: Affy, counters: Counters
) -> None:
    late = lead("s1", age=SETTINGS.click_wait + 1)
    assert attempt.run(late, attempts=9, probe=False).verdict is Verdict.DELIVERED
    assert counters.snapshot()["sent_without_click"] == 1


def test_sync_mode_without_an_outbox_sends_rather_than_drops(
    attempt: Attempt, affy: Affy, counters: Counters
) -> None:
    assert attempt.run(lead("s1"), attempts=2, probe=False, hold=False).final
    assert len(affy.sent) == 1 and counters.snapshot()["sent_without_click"] == 1


def test_a_status_call_that_fails_on_the_network_is_a_retry(
    attempt: Attempt, affy: Affy
) -> None:
    affy.status_error = AffyNetworkError("down")
    outcome = attempt.run(lead("s1"), attempts=0, probe=False)
    assert outcome.verdict is Verdict.RETRY and affy.sent == []


def test_a_status_call_affy_refuses_does_not_hold_the_lead(
    attempt: Attempt, affy: Affy
) -> None:
    # No key for the status call: AFFY can't order our leads, they go as before.
    affy.status_error = AffyAuthError("no key", status_code=401)
    assert attempt.run(lead("s1"), attempts=0, probe=False).verdict is Verdict.DELIVERED


def test_a_registration_by_click_id_alone_is_left_to_the_404_rule() -> None:
    body = registration_body(click_id="c1")
    by_click = Event("registration", body, "c1")
    assert click_session(by_click) is None
    with_session = Event("registration", body, "s1")
    assert click_session(with_session) == "s1"


def test_the_known_sessions_are_bounded(counters: Counters) -> None:
    gate = ClickGate(30.0, counters, LogLimiter(), None, size=3)
    for key in ("a", "b", "c", "d"):
        gate.remember(key)
    assert not gate.knows("a") and gate.knows("d")
    gate.knows("b")  # used: kept over c
    gate.remember("e")
    assert gate.knows("b") and not gate.knows("c")
