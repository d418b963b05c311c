"""The SQLite outbox keeps a visit's order itself, sets bad rows aside as dead letters and
bounds a writer's wait. Two handles on one file stand for two processes."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _delivery import payment

from affy_middleware.delivery.outbox import MALFORMED, OutboxBusy
from affy_middleware.delivery.outbox.owners import host_identity
from affy_middleware.delivery.outbox.sqlite.store import SqliteOutbox


def dead(path: Path) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT event_id, reason, answer FROM affy_outbox_dead").fetchall()


def gone_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "affy.sqlite"


def test_a_visit_is_claimed_one_row_at_a_time_across_processes(path: Path) -> None:
    a, b = SqliteOutbox(str(path)), SqliteOutbox(str(path))
    click, signup, pay = payment("v"), payment("v"), payment("v")
    other = payment("w")
    for event in (click, signup, pay, other):
        a.put(event, claimed=False)
    assert [e.event_id for e in a.claim(10)] == [click.event_id, other.event_id]
    assert b.claim(10) == []  # the click is in flight in `a`: its visit waits
    a.delete(click.event_id)
    assert [e.event_id for e in b.claim(10)] == [signup.event_id]
    assert a.claim(10) == []  # in flight in `b` now
    b.delete(signup.event_id)
    assert [e.event_id for e in a.claim(10)] == [pay.event_id]


def test_a_row_behind_another_processs_row_is_not_leased_at_put(path: Path) -> None:
    a, b = SqliteOutbox(str(path)), SqliteOutbox(str(path))
    click, signup, later = payment("v"), payment("v"), payment("v")
    assert a.put(click, claimed=True) is True
    assert b.put(signup, claimed=True) is False  # behind `a`'s click: left for claim
    assert a.put(later, claimed=True) is False  # behind `b`'s pending row, not ours
    assert b.claim(10) == []
    a.delete(click.event_id)
    assert [e.event_id for e in b.claim(10)] == [signup.event_id]


def test_rows_of_one_visit_held_by_one_process_stay_with_it(path: Path) -> None:
    a = SqliteOutbox(str(path))
    assert a.put(payment("v"), claimed=True) and a.put(payment("v"), claimed=True)
    assert a.put(payment(None), claimed=True)  # no order key: free
    assert a.count() == 3


def test_a_malformed_row_is_buried_and_the_good_rows_are_claimed(path: Path) -> None:
    a = SqliteOutbox(str(path))
    good = [payment(f"v{i}") for i in range(3)]
    for event in good:
        a.put(event, claimed=False)
    bad = {
        "not-json": b"{",
        "not-object": json.dumps({"kind": "payment", "eventId": "x", "createdAt": 1, "body": 5}),
        "bad-kind": json.dumps({"kind": "nope", "eventId": "y", "createdAt": 1, "body": {}}),
    }
    with sqlite3.connect(path) as db:
        for i, (event_id, record) in enumerate(bad.items()):
            db.execute(
                "INSERT INTO affy_outbox (seq, event_id, record, created_at) VALUES (?, ?, ?, 0)",
                (-i, event_id, record),
            )
    claimed = SqliteOutbox(str(path)).claim(10)
    assert sorted(e.event_id for e in claimed) == sorted(e.event_id for e in good)
    assert sorted((e, r) for e, r, _ in dead(path)) == sorted((e, MALFORMED) for e in bad)
    assert a.count() == 3  # pending: the good rows only


def test_bury_moves_a_row_with_affys_answer(path: Path) -> None:
    a = SqliteOutbox(str(path))
    event = payment("v")
    a.put(event, claimed=True)
    a.bury(event.event_id, "rejected", "422 leadValue must be positive")
    assert a.count() == 0 and a.dead_letters == 1
    assert dead(path) == [(event.event_id, "rejected", "422 leadValue must be positive")]
    a.bury("no-such-row", "rejected")  # nothing to move: nothing counted
    assert a.dead_letters == 1


def test_a_file_from_before_visit_order_is_migrated(path: Path) -> None:
    event, orphan = payment("v"), payment("w")
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE affy_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT"
            " NOT NULL UNIQUE, record BLOB NOT NULL, created_at REAL NOT NULL, owner_host"
            " TEXT, owner_pid INTEGER, owner_token TEXT, lease_until REAL NOT NULL DEFAULT 0)"
        )
        db.execute(
            "INSERT INTO affy_outbox (event_id, record, created_at) VALUES (?, ?, 0)",
            (event.event_id, event.to_record()),
        )
        db.execute(  # leased for an hour by a process of this host that is gone
            "INSERT INTO affy_outbox (event_id, record, created_at, owner_host, owner_pid,"
            " owner_token, lease_until) VALUES (?, ?, 0, ?, ?, 'old', ?)",
            (orphan.event_id, orphan.to_record(), host_identity(), gone_pid(), time.time() + 3600),
        )
    a = SqliteOutbox(str(path))
    assert a.put(payment("v"), claimed=True) is False  # behind the old row of its visit
    claimed = [e.event_id for e in a.claim(10)]
    assert claimed == [event.event_id, orphan.event_id]  # the dead owner's row: at once


def test_writers_wait_at_most_the_bound_whatever_their_number(path: Path) -> None:
    a = SqliteOutbox(str(path), busy_timeout_ms=300)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process writes for a long while
    waits: list[float] = []
    errors: list[BaseException] = []

    def write() -> None:
        start = time.monotonic()
        try:
            a.put(payment(None), claimed=True)
        except OutboxBusy as exc:
            errors.append(exc)
        waits.append(time.monotonic() - start)

    threads = [threading.Thread(target=write) for _ in range(6)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert len(errors) == 6 and max(waits) < 0.3 + 0.25, sorted(waits)
    a.put(payment(None), claimed=True)  # the busy timeout is back to the full bound
    assert a.count() == 1
