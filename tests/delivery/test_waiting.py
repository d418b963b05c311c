"""The thread backend with leads that must wait (issue 10): a lead AFFY refuses because
it does not know its click yet waits as a retry of its own visit, parked, so it holds no
sender; and one call that hangs does not starve the other visits."""

from __future__ import annotations

import threading

from _delivery import Make, payment

from affy_middleware._errors import AffyNotFoundError
from affy_middleware._wire import Event, registration_body


def registration(session: str) -> Event:
    return Event("registration", registration_body(click_id=f"c-{session}"), session)


def test_a_lead_waiting_for_its_click_holds_no_sender(make: Make) -> None:
    known = threading.Event()  # AFFY has the click of visit "waiting"
    sent: list[str] = []
    lock = threading.Lock()

    def send(event: Event) -> object:
        if event.kind == "registration" and not known.is_set():
            raise AffyNotFoundError("unknown click id", status_code=404)
        with lock:
            sent.append(str(event.order_key))
        return {}

    backend = make(send, max_in_flight=1)
    backend.submit(registration("waiting"))
    backend.submit(payment("waiting"))  # behind its registration
    for i in range(10):
        backend.submit(payment(f"other-{i}"))
    # One sender in all, and the registration still refused: the others go anyway.
    assert backend.flush(1.0) is False
    assert sorted(sent) == sorted(f"other-{i}" for i in range(10))
    stats = backend.stats()
    assert stats["waiting_for_click"] >= 1 and stats["dropped"] == 0
    known.set()  # the click reached AFFY (from another worker)
    assert backend.flush(5.0) is True
    assert sent[-2:] == ["waiting", "waiting"]  # the registration, then its payment


def test_one_hanging_call_does_not_starve_the_other_visits(make: Make) -> None:
    stuck = threading.Event()
    release = threading.Event()
    sent: list[str] = []
    lock = threading.Lock()

    def send(event: Event) -> object:
        if event.order_key == "slow":
            stuck.set()
            release.wait(10)
        with lock:
            sent.append(str(event.order_key))
        return {}

    backend = make(send, max_in_flight=4)
    backend.submit(payment("slow"))
    assert stuck.wait(5)  # the only sender so far is now stuck in its call
    for i in range(19):
        backend.submit(payment(f"other-{i}"))
    try:
        assert backend.flush(0.5) is False  # the slow one is still out
        assert len(sent) == 19
    finally:
        release.set()
    assert backend.flush(5.0) is True
