"""The thread backend against a second, in-memory store: anything that implements the
``Outbox`` interface slots in where the outbox is opened, without touching the backend
(the PostgreSQL outbox will come in the same way)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable

import pytest
from _delivery import Make

from affy_middleware._wire import Event
from affy_middleware.delivery.outbox import Outbox, guarded


class MemoryOutbox(Outbox):
    """Rows in a dict shared by several handles (one per "process"), claimed by owner."""

    def __init__(self, rows: dict[str, list[object]], owner: str) -> None:
        self.rows = rows  # event_id -> [event, owner or None], in insertion order
        self.owner = owner
        self.lock = threading.Lock()

    def put(self, event: Event, *, claimed: bool) -> bool:
        with self.lock:
            ahead = any(  # an earlier row of the visit that is not ours: wait behind it
                row[0].order_key == event.order_key is not None and row[1] != self.owner  # type: ignore[attr-defined]
                for row in self.rows.values()
            )
            owner = self.owner if claimed and not ahead else None
            self.rows.setdefault(event.event_id, [event, owner])
            return owner is not None

    def claim(self, limit: int) -> list[Event]:
        with self.lock:
            heads: dict[object, list[object]] = {}
            for row in self.rows.values():  # the oldest row of each visit
                key = row[0].order_key or id(row)  # type: ignore[attr-defined]
                heads.setdefault(key, row)
            free = [row for row in heads.values() if row[1] is None][:limit]
            for row in free:
                row[1] = self.owner
            return [row[0] for row in free]  # type: ignore[misc]

    def bury(self, event_id: str, reason: str, answer: str | None = None) -> None:
        with self.lock:
            if self.rows.pop(event_id, None) is not None:
                self.dead_letters += 1

    def renew(self) -> int:
        with self.lock:
            return sum(row[1] == self.owner for row in self.rows.values())

    def holds(self, event_id: str) -> bool:
        with self.lock:
            row = self.rows.get(event_id)
            return row is not None and row[1] == self.owner

    def delete(self, event_id: str) -> None:
        with self.lock:
            self.rows.pop(event_id, None)

    def release(self, event_ids: Iterable[str]) -> None:
        with self.lock:
            for event_id in event_ids:
                row = self.rows.get(event_id)
                if row is not None and row[1] == self.owner:
                    row[1] = None

    def release_all(self) -> None:
        with self.lock:
            mine = [i for i, row in self.rows.items() if row[1] == self.owner]
        self.release(mine)

    def count(self) -> int:
        with self.lock:
            return len(self.rows)


class Gate:
    def __init__(self) -> None:
        self.opened = threading.Event()
        self.sent: list[Event] = []

    def __call__(self, event: Event) -> dict[str, object]:
        self.opened.wait(10)
        self.sent.append(event)
        return {"success": True}


@pytest.fixture
def rows() -> dict[str, list[object]]:
    return {}


@pytest.fixture
def make(monkeypatch: pytest.MonkeyPatch, rows: dict[str, list[object]], make: Make) -> Make:
    """The shared factory (tests/conftest.py), its outbox opened as a MemoryOutbox on
    ``rows``, a new handle (a "process") for each backend (patched first, so that it is
    undone after the backends are closed)."""
    handles = iter(range(1000))
    monkeypatch.setattr(
        guarded, "open_outbox", lambda settings, lease: MemoryOutbox(rows, f"p{next(handles)}")
    )
    # The path only says "an outbox is configured"; the store is the in-memory one.
    return functools.partial(make, spool_path="/unused/x.db")


def click(visit: str, i: int) -> Event:
    return Event(kind="click", body={"i": i}, order_key=visit)


def test_memory_is_a_cache_of_any_outbox(make: Make, rows: dict[str, object]) -> None:
    gate = Gate()
    b = make(gate, queue_size=3, max_in_flight=1)
    events = [click("one-visit", i) for i in range(12)]
    assert all(b.submit(e) for e in events)  # memory holds 3; the outbox holds them all
    assert len(rows) == 12 and b.stats()["spooled"] == 12 and b.stats()["dropped"] == 0
    gate.opened.set()
    assert b.flush(10)
    assert [e.event_id for e in gate.sent] == [e.event_id for e in events]  # order kept
    assert rows == {}


def test_rows_left_by_another_process_are_replayed(
    make: Make, rows: dict[str, list[object]]
) -> None:
    earlier = MemoryOutbox(rows, "gone")
    left = [click(f"v{i}", i) for i in range(5)]
    for event in left:
        earlier.put(event, claimed=False)
    gate = Gate()
    gate.opened.set()
    b = make(gate)
    b.start()  # what backend_for does for settings with an outbox
    assert b.flush(5)
    assert sorted(e.event_id for e in gate.sent) == sorted(e.event_id for e in left)
    assert rows == {}


def test_a_row_another_process_took_over_is_not_sent(
    make: Make, rows: dict[str, list[object]]
) -> None:
    gate = Gate()
    b = make(gate)
    first, second = click("v", 1), click("v", 2)
    assert b.submit(first) and b.submit(second)  # second waits behind first
    rows[second.event_id][1] = "someone-else"  # its lease lapsed and another claimed it
    gate.opened.set()
    assert b.flush(5)
    assert gate.sent == [first] and b.stats()["handed_over"] == 1
