"""The thread backend's outbox side under faults: a spool locked at first open is opened
later and the events accepted meanwhile are written then; a refused event becomes a dead
letter; a visit's rows written by two "processes" go out in order."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from _delivery import Make, payment

from affy_middleware._errors import AffyValidationError
from affy_middleware._wire import Event
from affy_middleware.delivery.outbox.sqlite.store import SqliteOutbox
from affy_middleware.delivery.threaded import relay


def rows(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [r[0] for r in db.execute("SELECT event_id FROM affy_outbox ORDER BY seq")]


class Recorder:
    def __init__(self, error: Exception | None = None) -> None:
        self.sent: list[Event] = []
        self.error = error
        self.opened = threading.Event()
        self.opened.set()

    def __call__(self, event: Event) -> dict[str, object]:
        self.opened.wait(10)
        self.sent.append(event)
        if self.error is not None:
            raise self.error
        return {"success": True}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "affy.sqlite"


def test_events_accepted_while_the_spool_was_locked_are_written_once_it_opens(
    make: Make, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relay, "OPEN_WAIT", 0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the file as we start
    send = Recorder()
    send.opened.clear()  # AFFY does not answer yet: the event stays in memory
    b = make(send, spool_path=str(path))
    event = payment("v")
    start = time.monotonic()
    assert b.submit(event)  # accepted, in memory only
    assert time.monotonic() - start < 1.0  # the request waited about OPEN_WAIT, not 2 s+
    assert b.stats()["spool_errors"] >= 1
    holder.execute("COMMIT")
    holder.close()
    p = b.machinery()  # type: ignore[attr-defined]
    durable, relay_ = p.durable, p.relay
    assert durable.wait_open(5) is not None  # the keeper opened it (asked for a try now)
    relay_.refill()  # what the keeper's next round does: write what waited
    assert rows(path) == [event.event_id]
    send.opened.set()
    assert b.flush(5) and rows(path) == [] and [e.event_id for e in send.sent] == [event.event_id]


def test_a_refused_event_becomes_a_dead_letter_with_affys_answer(make: Make, path: Path) -> None:
    send = Recorder(AffyValidationError("leadValue must be positive", status_code=422))
    b = make(send, spool_path=str(path))
    assert b.submit(payment("v"))
    assert b.flush(5)
    with sqlite3.connect(path) as db:
        ((reason, answer),) = db.execute("SELECT reason, answer FROM affy_outbox_dead")
    assert reason == "rejected" and "leadValue must be positive" in answer
    assert b.stats()["dead_letters"] == 1 and rows(path) == []


def test_a_lead_written_by_another_process_waits_for_its_click(make: Make, path: Path) -> None:
    send = Recorder()
    send.opened.clear()  # AFFY holds the click
    a = make(send, spool_path=str(path))
    click, lead = payment("v"), payment("v")
    assert a.submit(click)
    other = SqliteOutbox(str(path))  # a second worker handles the signup
    assert other.put(lead, claimed=True) is False  # behind the click: not leased
    assert other.claim(5) == []
    send.opened.set()
    assert a.flush(5)  # the click goes, then this process takes the lead over and sends it
    assert [e.event_id for e in send.sent] == [click.event_id, lead.event_id]
    assert rows(path) == []
