"""The SQLite outbox: claims are exclusive, leases expire, dead owners' rows are taken
over, and the thread backend writes before enqueue returns and deletes only on acceptance."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _delivery import FAST, Make, payment

from affy_middleware._errors import AffyServerError, AffyValidationError
from affy_middleware._settings import Settings
from affy_middleware._wire import Event
from affy_middleware.delivery import Backend, make_backend
from affy_middleware.delivery.outbox.sqlite.claims import register_owner
from affy_middleware.delivery.outbox.sqlite.store import SqliteOutbox


def rows(path: Path) -> list[tuple[str, str | None]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT event_id, owner_token FROM affy_outbox ORDER BY seq").fetchall()


class Gate:
    """A sender that blocks until opened, and records what it sent."""

    def __init__(self, is_open: bool = True) -> None:
        self.opened = threading.Event()
        if is_open:
            self.opened.set()
        self.sent: list[Event] = []
        self.error: Exception | None = None
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> dict[str, object]:
        self.opened.wait(10)
        if self.error is not None:
            raise self.error
        with self.lock:
            self.sent.append(event)
        return {"success": True}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "spool" / "affy.sqlite"


# -- the SQLite outbox itself --------------------------------------------------------------------


def test_round_trip_keeps_the_event_exactly(path: Path) -> None:
    a, b = SqliteOutbox(str(path)), SqliteOutbox(str(path))
    event = payment("s1", "99.10")
    a.put(event, claimed=False)
    (claimed,) = b.claim(10)
    assert (claimed.event_id, claimed.kind, claimed.order_key, claimed.body) == (
        event.event_id,
        "payment",
        "s1",
        event.body,
    )
    assert claimed.created_at == pytest.approx(event.created_at)


def test_a_row_is_claimed_by_one_process_only(path: Path) -> None:
    a, b = SqliteOutbox(str(path)), SqliteOutbox(str(path))
    for i in range(10):
        a.put(payment(f"s{i}"), claimed=False)
    got_a = a.claim(6)
    got_b = b.claim(100)
    assert len(got_a) == 6 and len(got_b) == 4
    assert not {e.event_id for e in got_a} & {e.event_id for e in got_b}
    assert a.claim(100) == [] and b.claim(100) == []


def test_concurrent_claims_never_overlap(path: Path) -> None:
    SqliteOutbox(str(path))
    writer = SqliteOutbox(str(path))
    for i in range(300):
        writer.put(payment(f"s{i}"), claimed=False)
    spools = [SqliteOutbox(str(path)) for _ in range(4)]
    results: list[list[str]] = [[] for _ in spools]

    def drain(n: int) -> None:
        while batch := spools[n].claim(7):
            results[n] += [e.event_id for e in batch]

    threads = [threading.Thread(target=drain, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    everything = [i for r in results for i in r]
    assert len(everything) == 300 == len(set(everything))


def test_an_expired_lease_can_be_claimed_by_another(path: Path) -> None:
    a = SqliteOutbox(str(path), lease=-1.0)  # a process that stopped renewing
    b = SqliteOutbox(str(path))
    event = payment("s1")
    a.put(event, claimed=True)
    assert [e.event_id for e in b.claim(5)] == [event.event_id]


def test_rows_of_a_dead_process_are_taken_over_at_once(path: Path) -> None:
    b = SqliteOutbox(str(path))
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    a = SqliteOutbox(str(path))
    a.pid = int(dead.stdout)  # as if the row had been written by that (now gone) process
    register_owner(a._db, a.token, a.host, a.pid)  # what opening the outbox records
    live = SqliteOutbox(str(path))  # this process: alive, its lease holds
    a.put(payment("dead"), claimed=True)
    live.put(payment("live"), claimed=True)
    assert [e.order_key for e in b.claim(5)] == ["dead"]


def test_renew_release_delete(path: Path) -> None:
    a, b = SqliteOutbox(str(path), lease=0.5), SqliteOutbox(str(path))
    e1, e2 = payment("s1"), payment("s2")
    a.put(e1, claimed=True)
    a.put(e2, claimed=True)
    assert a.renew() == 2
    a.release([e1.event_id])
    assert [e.event_id for e in b.claim(5)] == [e1.event_id]
    a.delete(e2.event_id)
    assert a.count() == 1


# -- the thread backend with an outbox -----------------------------------------------------------


def test_written_before_enqueue_returns_and_deleted_when_accepted(make: Make, path: Path) -> None:
    gate = Gate(is_open=False)
    d = make(gate, spool_path=str(path))
    events = [payment(f"s{i}") for i in range(5)]
    for e in events:
        assert d.submit(e)
        assert e.event_id in {row[0] for row in rows(path)}
    assert d.stats()["spooled"] == 5
    gate.opened.set()
    assert d.flush(5)
    assert rows(path) == []
    assert sorted(e.event_id for e in gate.sent) == sorted(e.event_id for e in events)


def test_rejected_rows_are_deleted_failing_ones_kept(make: Make, path: Path) -> None:
    gate = Gate()
    gate.error = AffyValidationError("bad", status_code=400)
    d = make(gate, spool_path=str(path))
    d.submit(payment("s1"))
    assert d.flush(5)
    assert rows(path) == [] and d.stats()["dropped_rejected"] == 1
    gate.error = AffyServerError("down", status_code=503)
    kept = payment("s2")
    d.submit(kept)
    assert d.flush(0.3) is False
    d.close(0.5)
    assert rows(path) == [(kept.event_id, None)]  # released for the next process
    assert d.stats()["dropped_shutdown"] == 0


def test_a_new_backend_replays_what_an_old_one_left(make: Make, path: Path) -> None:
    down = Gate()
    down.error = AffyServerError("down", status_code=503)
    old = make(down, spool_path=str(path))
    events = [payment(f"s{i}") for i in range(8)]
    for e in events:
        old.submit(e)
    old.close(0.2, final=True)  # the old process exits: its rows are given back
    up = Gate()
    new = make(up, spool_path=str(path))
    new.start()  # what backend_for does when a spool is configured
    assert new.flush(5)
    assert sorted(e.event_id for e in up.sent) == sorted(e.event_id for e in events)
    assert rows(path) == []


def test_memory_is_a_cache_of_the_spool(make: Make, path: Path) -> None:
    gate = Gate(is_open=False)
    d = make(gate, spool_path=str(path), queue_size=3, max_in_flight=1)
    events = [payment("one-visit") for _ in range(12)]
    assert all(d.submit(e) for e in events)  # none dropped: the spool holds the rest
    stats = d.stats()
    assert stats["dropped"] == 0 and stats["spooled"] == 12
    assert stats["queued"] + stats["in_flight"] <= 3
    gate.opened.set()
    assert d.flush(10)
    assert [e.event_id for e in gate.sent] == [e.event_id for e in events]  # order kept
    assert rows(path) == []


def test_an_unusable_spool_falls_back_to_memory(
    make: Make, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    gate = Gate()
    d = make(gate, spool_path=str(blocker / "spool.sqlite"))
    assert d.submit(payment("s1"))
    assert d.flush(5) and len(gate.sent) == 1
    assert any("cannot open the outbox" in r.getMessage() for r in caplog.records)


def test_enqueue_with_a_spool_is_fast_enough_to_stay_in_the_request(make: Make, path: Path) -> None:
    # Not a benchmark (see bench/bench_delivery.py): a guard against an fsync per event.
    gate = Gate(is_open=False)
    d = make(gate, spool_path=str(path), queue_size=100_000)
    start = time.perf_counter()
    for i in range(200):
        d.submit(payment(f"s{i}"))
    assert (time.perf_counter() - start) / 200 < 0.02
    gate.opened.set()


def test_sync_mode_keeps_undelivered_events_in_the_spool(make: Make, path: Path) -> None:
    gate = Gate()
    d = make(gate, spool_path=str(path), delivery="sync", timeout=0.2, flush_timeout=0.2)
    assert d.submit(payment("s1")) is True
    assert rows(path) == [] and len(gate.sent) == 1
    gate.error = AffyServerError("down", status_code=503)
    kept = payment("s2")
    assert d.submit(kept) is False
    assert rows(path) == [(kept.event_id, None)]  # left for a later process to send
    assert d.stats()["dropped_unsent"] == 0


def test_a_lapsed_lease_is_checked_before_sending(made: list[Backend], path: Path) -> None:
    # A process frozen longer than its lease may find its rows taken over: it must not
    # send them too. (A lease of -1 s has lapsed from the start.)
    gate = Gate(is_open=False)
    settings = Settings(
        client_id=1, api_url="http://127.0.0.1:9", spool_path=str(path), max_in_flight=1
    )
    d = make_backend(settings, send=gate, retry_policy=FAST, outbox_lease=-1.0)
    made.append(d)
    # Two visits (another process may claim only the oldest row of a visit), one sender.
    first, second = payment("visit-1"), payment("visit-2")
    d.submit(first)  # being sent (the gate holds it) ...
    d.submit(second)  # ... so this one waits behind it, unchecked yet
    assert d.flush(0.2) is False
    other = SqliteOutbox(str(path))
    assert len(other.claim(5)) == 2  # the other process takes both rows over
    gate.opened.set()
    assert d.flush(5)
    assert gate.sent == [first]  # checked before `other` came: sent (a duplicate risk)
    assert d.stats()["handed_over"] == 1  # checked after: left to `other`
    assert rows(path) == [(second.event_id, other.token)]


def test_a_late_renewal_keeps_rows_nobody_took(made: list[Backend], path: Path) -> None:
    gate = Gate()
    settings = Settings(client_id=1, api_url="http://127.0.0.1:9", spool_path=str(path))
    d = make_backend(settings, send=gate, retry_policy=FAST, outbox_lease=-1.0)
    made.append(d)
    d.submit(payment("s1"))
    assert d.flush(5)
    assert len(gate.sent) == 1 and d.stats()["handed_over"] == 0 and rows(path) == []
