"""Every record of the library carries ``affy_event_id``, ``affy_kind``, ``affy_status`` and
``affy_reason`` (None where they do not apply), so a JSON formatter gets them; no email,
name or key above DEBUG. Checked with a capturing handler on the main records."""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from _delivery import OFFLINE, Make, fast_policy, payment

from affy_middleware._errors import AffyNotFoundError, AffyServerError, AffyValidationError
from affy_middleware._wire import Event
from affy_middleware.delivery import Backend
from affy_middleware.delivery.sending.attempt import Attempt, Verdict
from affy_middleware.delivery.support.counters import Counters
from affy_middleware.delivery.support.logs import LogLimiter

POLICY = fast_policy(failure_threshold=2, min_pause=0.05)
EMAIL, KEY = "ann.secret@example.com", "sk_live_never_logged"
SETTINGS = OFFLINE.replace(api_key=KEY)
FIELDS = ("affy_event_id", "affy_kind", "affy_status", "affy_reason")


class Capture(logging.Handler):
    """Keeps every record, and each one as a JSON formatter would write it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        fields = {name: getattr(record, name) for name in FIELDS}  # AttributeError: a miss
        self.lines.append(json.dumps({"message": record.getMessage(), **fields}))

    def one(self, reason: str) -> logging.LogRecord:
        found = [r for r in self.records if r.affy_reason == reason]  # type: ignore[attr-defined]
        assert len(found) == 1, [r.getMessage() for r in self.records]
        return found[0]


@pytest.fixture
def capture() -> Iterator[Capture]:
    handler = Capture()
    logger = logging.getLogger("affy_middleware")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old)
    above_debug = [
        line
        for r, line in zip(handler.records, handler.lines, strict=True)
        if r.levelno > logging.DEBUG
    ]
    for line in above_debug:
        assert EMAIL not in line and KEY not in line, line
    assert KEY not in "".join(handler.lines)


@pytest.fixture
def make(make: Make) -> Make:
    """The shared factory (tests/conftest.py), with a key and a low failure threshold."""
    return functools.partial(make, policy=POLICY, api_key=KEY)


def test_a_rejected_event(capture: Capture, make: Callable[..., Backend]) -> None:
    def refuse(event: Event) -> object:
        raise AffyValidationError(f"bad email {EMAIL}", status_code=422, error="Unprocessable")

    event = payment(email=EMAIL)
    d = make(refuse)
    assert d.submit(event) and d.flush(5)
    record = capture.one("rejected")
    assert record.levelno == logging.WARNING
    assert "bad email <redacted>" in record.getMessage()  # AFFY's words, not hers
    assert (record.affy_event_id, record.affy_kind, record.affy_status) == (  # type: ignore[attr-defined]
        event.event_id,
        "payment",
        422,
    )


def test_a_pause_and_a_full_queue(capture: Capture, make: Callable[..., Backend]) -> None:
    release = threading.Event()

    def down(event: Event) -> object:
        release.wait(10)
        raise AffyServerError("unavailable", status_code=503, error="Service Unavailable")

    d = make(down, queue_size=2, max_in_flight=1)
    events = [payment(f"s{i}", email=EMAIL) for i in range(3)]
    assert [d.submit(e) for e in events] == [True, True, False]
    full = capture.one("queue_full")
    assert (full.affy_event_id, full.affy_kind, full.affy_status) == (  # type: ignore[attr-defined]
        events[2].event_id,
        "payment",
        None,
    )
    release.set()
    deadline = time.monotonic() + 5
    while not d.stats()["pauses"] and time.monotonic() < deadline:
        assert d.flush(0.05) is False  # bounded wait for the breaker to open
    paused = capture.one("paused")
    assert paused.affy_status == 503  # type: ignore[attr-defined]
    assert paused.affy_kind == "payment"  # type: ignore[attr-defined]


def test_a_lead_waiting_for_its_click(capture: Capture) -> None:
    def unknown_click(event: Event) -> object:
        raise AffyNotFoundError("unknown click", status_code=404)

    attempt = Attempt(SETTINGS, POLICY, Counters(), LogLimiter(), unknown_click)
    event = payment(email=EMAIL, expects_click=True)
    assert attempt.run(event, attempts=0, probe=False).verdict is Verdict.RETRY
    record = capture.one("waiting_for_click")
    assert record.levelno == logging.INFO
    assert (record.affy_event_id, record.affy_status) == (event.event_id, 404)  # type: ignore[attr-defined]


def test_records_logged_without_fields_still_have_them(capture: Capture) -> None:
    logging.getLogger("affy_middleware").debug("a record of ours without extra")
    assert capture.records[-1].affy_reason is None  # type: ignore[attr-defined]
    assert json.loads(capture.lines[-1])["affy_event_id"] is None
