"""``Outbox.states()``: the rows by state, for ``affy_outbox_events{state}`` (both stores).
``pending``: waiting, nobody holds a live lease; ``leased``: held by a live lease (being
sent); ``dead``: the dead letters. Two handles stand for two processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from affy_middleware._wire import Event
from affy_middleware.delivery.outbox import Outbox
from affy_middleware.delivery.outbox.postgres.store import PostgresOutbox
from affy_middleware.delivery.outbox.sqlite.store import SqliteOutbox


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Outbox]]:
    opened: list[Outbox] = []
    if request.param == "sqlite":
        path = str(tmp_path / "outbox.sqlite")

        def make(**kw: float) -> Outbox:
            opened.append(SqliteOutbox(path, **kw))
            return opened[-1]
    else:
        url: str = request.getfixturevalue("pg_url")

        def make(**kw: float) -> Outbox:
            opened.append(PostgresOutbox(url, **kw))
            return opened[-1]

    yield make
    for outbox in opened:
        outbox.close()


def click(visit: str | None) -> Event:
    return Event(kind="click", body={}, order_key=visit)


def test_rows_are_counted_by_state_across_handles(opener: Callable[..., Outbox]) -> None:
    a, b = opener(), opener()
    assert a.states() == {"pending": 0, "leased": 0, "dead": 0}
    assert a.put(click("v1"), claimed=True)  # leased to a
    assert not b.put(click("v1"), claimed=True)  # behind a's row of its visit: pending
    for visit in ("v2", "v3", "v4"):
        a.put(click(visit), claimed=False)  # pending
    assert [len(b.claim(1))] == [1]  # one of them leased to b
    refused = click(None)
    a.put(refused, claimed=True)
    a.bury(refused.event_id, "rejected", None)
    expected = {"pending": 3, "leased": 2, "dead": 1}
    assert a.states() == b.states() == expected
    assert a.count() == expected["pending"] + expected["leased"]  # ``spooled``: the same


def test_an_expired_lease_is_pending_again(opener: Callable[..., Outbox]) -> None:
    a = opener(lease=-1.0)  # every lease it takes has run out already (a frozen process)
    assert a.put(click("v"), claimed=True)
    assert opener().states() == {"pending": 1, "leased": 0, "dead": 0}
