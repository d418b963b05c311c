"""A row the outbox cannot decode is a give-up like the others, in both stores: buried as
``malformed``, counted once (by the process that buried it) per reason and per kind, and
told to ``on_error`` with what could be read of it, outside every lock of the library."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from _delivery import Make

from affy_middleware._wire import Event
from affy_middleware.delivery import Backend
from affy_middleware.delivery.outbox import Outbox
from affy_middleware.delivery.outbox.postgres.store import PostgresOutbox
from affy_middleware.delivery.outbox.sqlite.store import SqliteOutbox
from affy_middleware.delivery.sending.hook import REASONS
from affy_middleware.delivery.support.counters import UNKNOWN_KIND


@dataclass
class Store:
    """One outbox (SQLite file or PostgreSQL database) and how to write a raw row in it."""

    name: str
    changes: dict[str, object]
    open: Callable[[], Outbox]
    insert: Callable[[str, str, bytes, str | None], None]


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        path = str(tmp_path / "outbox.sqlite")
        SqliteOutbox(path).close()  # the tables

        def insert_sqlite(event_id: str, kind: str, record: bytes, key: str | None) -> None:
            with sqlite3.connect(path) as db:  # SQLite keeps the kind in the record only
                (seq,) = db.execute("SELECT COALESCE(MIN(seq), 1) - 1 FROM affy_outbox").fetchone()
                db.execute(
                    "INSERT INTO affy_outbox (seq, event_id, record, created_at, order_key)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (seq, event_id, record, time.time(), key),
                )

        return Store("sqlite", {"spool_path": path}, lambda: SqliteOutbox(path), insert_sqlite)
    url: str = request.getfixturevalue("pg_url")
    PostgresOutbox(url).close()

    def insert_pg(event_id: str, kind: str, record: bytes, key: str | None) -> None:
        with psycopg.connect(url) as conn:
            conn.execute(
                "INSERT INTO affy_outbox (event_id, kind, record, created_at, order_key)"
                " VALUES (%s, %s, %s, %s, %s)",
                (event_id, kind, record, time.time(), key),
            )

    return Store("postgres", {"outbox_url": url}, lambda: PostgresOutbox(url), insert_pg)


def bad_rows(store: Store) -> dict[str, tuple[str, str | None]]:
    """Three undecodable rows; event id -> (the kind the library should report, order key)."""
    store.insert(
        "body-not-object",
        "payment",
        json.dumps({"kind": "payment", "eventId": "x", "createdAt": 1, "body": 5}).encode(),
        "visit-1",
    )
    store.insert(
        "foreign-kind",
        "refund",
        json.dumps({"kind": "refund", "eventId": "y", "createdAt": 1, "body": {}}).encode(),
        None,
    )
    store.insert("not-json", "click", b"{", "visit-2")
    # PostgreSQL has a kind column; SQLite has the record alone, unreadable here.
    return {
        "body-not-object": ("payment", "visit-1"),
        "foreign-kind": (UNKNOWN_KIND, None),
        "not-json": ("click" if store.name == "postgres" else UNKNOWN_KIND, "visit-2"),
    }


def click(i: int) -> Event:
    return Event(kind="click", body={"i": i}, order_key=f"good-{i}")


def test_malformed_is_a_reason_like_the_others() -> None:
    assert "malformed" in REASONS


def test_claim_hands_over_what_could_be_read_of_each_buried_row(store: Store) -> None:
    outbox = store.open()
    try:
        good = [click(i) for i in range(2)]
        for event in good:
            outbox.put(event, claimed=False)
        expected = bad_rows(store)
        claimed = outbox.claim(10)
        assert sorted(e.event_id for e in claimed) == sorted(e.event_id for e in good)
        told = outbox.take_malformed()
        assert {e.event_id: (e.kind, e.order_key) for e in told} == expected
        assert all(e.body == {} for e in told)  # the unreadable record is not handed out
        assert outbox.take_malformed() == []  # each once
        assert outbox.dead_letters == 3
    finally:
        outbox.close()


class Hook:
    """Records ``(event id, kind, order key, reason)``; may call back into the library."""

    def __init__(self, inside: Callable[[], object] = lambda: None) -> None:
        self.calls: list[tuple[str, str, str | None, str]] = []
        self.lock = threading.Condition()
        self.inside = inside

    def __call__(self, event: Event, reason: str) -> None:
        self.inside()
        with self.lock:
            self.calls.append((event.event_id, event.kind, event.order_key, reason))
            self.lock.notify_all()

    def wait_for(self, n: int) -> list[tuple[str, str, str | None, str]]:
        """The calls once there are ``n`` (the keeper may tell just after a flush)."""
        with self.lock:
            self.lock.wait_for(lambda: len(self.calls) >= n, 5)
            return list(self.calls)


def sent_nothing_wrong(event: Event) -> dict[str, object]:
    return {"success": True}


def backend(make: Make, store: Store, hook: Hook) -> Backend:
    return make(sent_nothing_wrong, **store.changes, on_error=hook)


def test_a_malformed_row_is_counted_by_kind_and_told_to_on_error(store: Store, make: Make) -> None:
    writer = store.open()
    good = [click(i) for i in range(3)]
    for event in good:
        writer.put(event, claimed=False)
    writer.close()
    expected = bad_rows(store)
    hook = Hook()
    b = backend(make, store, hook)
    # The hook calls back into the library (a flush takes the claim's lock): it runs
    # outside every lock, or this flush never returns.
    flushed: list[bool] = []
    hook.inside = lambda: flushed.append(b.flush(0.2))
    assert b.flush(5)
    calls = hook.wait_for(3)
    assert {i: (k, key) for i, k, key, _ in calls} == expected
    assert {reason for *_, reason in calls} == {"malformed"}
    assert len(flushed) == 3
    s = b.stats()
    assert s["sent"] == 3 and s["dead_letters"] == 3
    assert s["dropped_malformed"] == 3 and s["dropped"] == 3
    kinds = [kind for kind, _ in expected.values()]
    for kind in ("payment", "click", UNKNOWN_KIND):
        assert s[f"events_{kind}_dropped"] == kinds.count(kind), kind
    assert s["events_click_delivered"] == 3


def test_two_processes_count_each_malformed_row_once(store: Store, make: Make) -> None:
    expected = bad_rows(store)
    hooks = [Hook(), Hook()]
    pair = [backend(make, store, hook) for hook in hooks]
    for b in pair:
        assert b.flush(5)
    counted = [b.stats()["dropped_malformed"] for b in pair]
    assert sum(counted) == len(expected)
    told = [i for hook, n in zip(hooks, counted, strict=True) for i, *_ in hook.wait_for(n)]
    assert sorted(told) == sorted(expected)  # each by the process that counted it


def test_a_hook_that_raises_changes_nothing(store: Store, make: Make) -> None:
    expected = bad_rows(store)

    def broken() -> None:
        raise RuntimeError("the app's bug")

    hook = Hook(inside=broken)
    b = backend(make, store, hook)
    assert b.flush(5)
    assert b.stats()["dropped_malformed"] == len(expected)
    good = click(0)
    assert b.submit(good) and b.flush(5)  # delivery goes on
    assert b.stats()["sent"] == 1
