"""The PostgreSQL outbox against the ``Outbox`` contract, on a real server: two handles
stand for two processes (or hosts) sharing one outbox."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from _postgres import PASSWORD

from affy_middleware._wire import Event
from affy_middleware.delivery.outbox import OutboxError
from affy_middleware.delivery.outbox.postgres.store import PostgresOutbox


@pytest.fixture
def handles(pg_url: str) -> Iterator[list[PostgresOutbox]]:
    opened: list[PostgresOutbox] = []
    yield opened
    for handle in opened:
        handle.close()


def handle(handles: list[PostgresOutbox], url: str, **kwargs: float) -> PostgresOutbox:
    outbox = PostgresOutbox(url, **kwargs)
    handles.append(outbox)
    return outbox


def event(visit: str | None, i: int, kind: str = "click") -> Event:
    return Event(kind=kind, body={"i": i}, order_key=visit)  # type: ignore[arg-type]


def ids(events: list[Event]) -> list[str]:
    return [e.event_id for e in events]


def test_rows_are_claimed_once_oldest_first(pg_url: str, handles: list[PostgresOutbox]) -> None:
    a, b = handle(handles, pg_url), handle(handles, pg_url)
    rows = [event(f"v{i}", i) for i in range(5)]
    for row in rows:
        a.put(row, claimed=False)
    assert a.count() == 5 and b.count() == 5
    first = a.claim(3)
    assert ids(first) == ids(rows[:3]) and first[0].body == {"i": 0}
    assert ids(b.claim(10)) == ids(rows[3:])
    assert a.claim(10) == [] and b.claim(10) == []


def test_claimed_puts_are_held_by_their_writer(pg_url: str, handles: list[PostgresOutbox]) -> None:
    a, b = handle(handles, pg_url), handle(handles, pg_url)
    mine = event(None, 1)
    a.put(mine, claimed=True)
    a.put(mine, claimed=True)  # the same id twice is one row
    assert a.count() == 1 and b.claim(10) == [] and a.claim(10) == []
    assert a.holds(mine.event_id) and a.renew() == 1
    a.release([mine.event_id])
    assert ids(b.claim(10)) == [mine.event_id]
    b.delete(mine.event_id)
    assert a.count() == 0


def test_a_visit_is_claimed_head_first_across_handles(
    pg_url: str, handles: list[PostgresOutbox]
) -> None:
    a, b = handle(handles, pg_url), handle(handles, pg_url)
    click, registration = event("visit", 1), event("visit", 2, "registration")
    payment, free = event("visit", 3, "payment"), event(None, 4)
    for row in (click, registration, payment, free):
        b.put(row, claimed=False)
    assert ids(a.claim(10)) == [click.event_id, free.event_id]
    assert b.claim(10) == []  # the click is in flight at a: its visit waits
    a.release([click.event_id])  # given back: the head is free again, not its followers
    assert ids(b.claim(10)) == [click.event_id]
    b.delete(click.event_id)  # delivered: the registration is the head now
    assert ids(a.claim(10)) == [registration.event_id] and b.claim(10) == []
    a.delete(registration.event_id)
    assert ids(b.claim(10)) == [payment.event_id]


def test_an_expired_lease_is_taken_over_and_the_late_holder_knows(
    pg_url: str, handles: list[PostgresOutbox]
) -> None:
    a = handle(handles, pg_url, lease=0.5)
    b = handle(handles, pg_url, lease=0.5)
    row = event(None, 1)
    a.put(row, claimed=True)
    deadline = time.monotonic() + 10
    taken: list[Event] = []
    while not taken and time.monotonic() < deadline:  # a does not renew: "frozen"
        taken = b.claim(10)
        time.sleep(0.05)  # polling the server clock, not waiting for our own work
    assert ids(taken) == [row.event_id]
    assert not a.holds(row.event_id)  # a's renewal ran late: it checks, and stands down
    assert b.holds(row.event_id)


def test_bury_moves_a_row_to_the_dead_letters(pg_url: str, handles: list[PostgresOutbox]) -> None:
    a = handle(handles, pg_url)
    row = event("v", 1, "registration")
    a.put(row, claimed=True)
    a.bury(row.event_id, "rejected", '{"error": "Bad Request"}')
    assert a.count() == 0
    with psycopg.connect(pg_url) as conn:
        dead = conn.execute(
            "SELECT event_id, kind, order_key, reason, answer FROM affy_outbox_dead"
        ).fetchall()
    assert dead == [(row.event_id, "registration", "v", "rejected", '{"error": "Bad Request"}')]


def test_a_malformed_row_is_buried_and_good_rows_still_come(
    pg_url: str, handles: list[PostgresOutbox]
) -> None:
    a = handle(handles, pg_url)
    good = [event(None, i) for i in range(3)]
    a.put(good[0], claimed=False)
    with psycopg.connect(pg_url) as conn:
        conn.execute(
            "INSERT INTO affy_outbox (event_id, kind, record, created_at)"
            " VALUES ('garbage', 'click', '\\x7b6e6f', 0)"
        )
    for row in good[1:]:
        a.put(row, claimed=False)
    assert ids(a.claim(10)) == ids(good)
    with psycopg.connect(pg_url) as conn:
        dead = conn.execute("SELECT event_id, reason FROM affy_outbox_dead").fetchall()
    assert dead == [("garbage", "malformed")] and a.count() == 3


def test_unreachable_at_start_names_the_url_without_its_password() -> None:
    url = f"postgresql://app:{PASSWORD}@127.0.0.1:9/app"
    with pytest.raises(OutboxError) as caught:
        PostgresOutbox(url)
    message = str(caught.value)
    assert "postgresql://app:***@127.0.0.1:9/app" in message and PASSWORD not in message
    assert caught.value.__cause__ is None  # the driver's error is not chained in


def test_a_wrong_password_is_not_shown(postgres_server: object, pg_url: str) -> None:
    wrong = pg_url.replace(PASSWORD, "not-the-pw-123")
    with pytest.raises(OutboxError) as caught:
        PostgresOutbox(wrong)
    assert "not-the-pw-123" not in str(caught.value) and "***" in str(caught.value)


def test_a_lost_connection_fails_one_call_then_reconnects(
    pg_url: str, handles: list[PostgresOutbox]
) -> None:
    a = handle(handles, pg_url)
    assert PASSWORD not in repr(a) and "***" in repr(a)
    a.put(event(None, 1), claimed=False)
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'affy_middleware'"
        )
    with pytest.raises(OutboxError) as caught:
        a.count()
    assert PASSWORD not in str(caught.value)
    assert a.count() == 1  # the next call connects again


def test_tables_are_created_once_by_racing_handles(pg_url: str) -> None:
    import threading

    errors: list[BaseException] = []
    opened: list[PostgresOutbox] = []

    def open_one() -> None:
        try:
            opened.append(PostgresOutbox(pg_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    for outbox in opened:
        outbox.close()
    assert errors == [] and len(opened) == 6


def test_a_late_renewal_does_not_win_back_rows_taken_over(
    pg_url: str, handles: list[PostgresOutbox]
) -> None:
    a = handle(handles, pg_url, lease=0.5)
    b = handle(handles, pg_url, lease=0.5)
    rows = [event(None, 1), event(None, 2)]
    for row in rows:
        a.put(row, claimed=True)
    deadline = time.monotonic() + 10
    taken: list[Event] = []
    while len(taken) < 2 and time.monotonic() < deadline:  # a is "frozen": no renewal
        taken += b.claim(10)
        time.sleep(0.05)  # polling the server clock, not waiting for our own work
    assert sorted(ids(taken)) == sorted(ids(rows))
    assert a.renew() == 0  # a wakes up: its keeper renews first, and finds nothing
    assert not a.holds(rows[0].event_id) and not a.holds(rows[1].event_id)


FORK = """
import gc, os, sys
from affy_middleware._wire import Event
from affy_middleware.delivery.outbox.postgres.store import PostgresOutbox
outbox = PostgresOutbox(sys.argv[1])
outbox.put(Event(kind="click", body={}), claimed=False)
session = lambda: outbox.run(lambda conn: conn.info.backend_pid)
parent = session()
pid = os.fork()
if pid == 0:  # the child: uses the inherited handle, then drops it
    outbox.put(Event(kind="click", body={}), claimed=False)
    print("child", session() != parent, flush=True)  # a session of its own
    del outbox
    gc.collect()
    os._exit(0)
os.waitpid(pid, 0)
print("parent", outbox.count(), session() == parent, flush=True)  # ours still works
"""


def test_a_forked_child_does_not_close_the_parents_session(pg_url: str) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", FORK, pg_url], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["child", "True", "parent", "2", "True"], done.stderr


def test_a_lead_written_while_its_click_is_elsewhere_waits_its_turn(
    pg_url: str, handles: list[PostgresOutbox]
) -> None:
    a, b = handle(handles, pg_url), handle(handles, pg_url)
    click, registration = event("visit", 1), event("visit", 2, "registration")
    payment = event("visit", 3, "payment")
    a.put(click, claimed=True)  # host a landed the visitor; AFFY was slow
    b.put(registration, claimed=True)  # host b signs them up: not b's to send yet
    assert a.holds(click.event_id) and not b.holds(registration.event_id)
    a.put(payment, claimed=True)  # a's own later step waits behind b's row too
    assert not a.holds(payment.event_id)
    assert a.claim(10) == [] and b.claim(10) == []
    a.delete(click.event_id)
    assert ids(b.claim(10)) == [registration.event_id] and b.holds(registration.event_id)
    b.delete(registration.event_id)
    assert ids(a.claim(10)) == [payment.event_id]


def test_one_process_keeps_its_own_visit_in_memory(
    pg_url: str, handles: list[PostgresOutbox]
) -> None:
    a = handle(handles, pg_url)
    steps = [event("visit", 1), event("visit", 2, "registration"), event(None, 3)]
    for step in steps:
        a.put(step, claimed=True)
    assert all(a.holds(step.event_id) for step in steps)  # its memory keeps the order


def test_every_statement_is_bounded_in_time(pg_url: str, handles: list[PostgresOutbox]) -> None:
    # Off the request path the live server cancels a long statement itself, a little
    # before our own deadline: the connection stays and the handle works on.
    a = handle(handles, pg_url, statement_timeout=0.5)
    assert a.run(lambda conn: conn.execute("SHOW statement_timeout").fetchone()) == ("500ms",)
    with pytest.raises(OutboxError, match="statement timeout"):
        a.run(lambda conn: conn.execute("SELECT pg_sleep(5)"))
    assert a.count() == 0


def test_a_claim_cut_off_after_the_server_ran_it_holds_no_visit_back(
    pg_url: str, handles: list[PostgresOutbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection drops after the server leased the rows, before their ids came
    back: the handle never learns of them. They must not wait for their lease to run out
    (their visits' later rows would wait as long): the next claim gives them back first."""
    from affy_middleware.delivery.outbox import OutboxUncertain

    a, b = handle(handles, pg_url), handle(handles, pg_url)
    held = event("mine", 0)
    a.put(held, claimed=True)  # a row a holds and sends itself: never given back
    rows = [event(f"v{i}", i) for i in range(3)]
    for row in rows:
        b.put(row, claimed=False)
    real = a._claim

    def cut_off(conn: Any, limit: int) -> Any:
        real(conn, limit)  # the server leases them to a ...
        raise OutboxUncertain("the connection was lost")  # ... and a never hears of it

    monkeypatch.setattr(a, "_claim", cut_off)
    with pytest.raises(OutboxError):
        a.claim(10)
    assert b.claim(10) == []  # leased to a, by the server's clock
    monkeypatch.setattr(a, "_claim", real)
    assert sorted(ids(a.claim(10))) == sorted(ids(rows))  # given back, then claimed: no wait
    assert a.holds(held.event_id)


def test_every_connection_detects_a_dead_peer(pg_url: str, handles: list[PostgresOutbox]) -> None:
    """What docs/deployment.md says each outbox connection sets: TCP keepalives and
    ``tcp_user_timeout`` (a network gone silent), and libpq's connect bound."""
    a = handle(handles, pg_url, wait=1.5)
    params = a.run(lambda conn: conn.info.get_parameters())
    assert params["keepalives"] == "1"
    assert (params["keepalives_idle"], params["keepalives_interval"]) == ("5", "2")
    assert params["keepalives_count"] == "3"
    assert params["tcp_user_timeout"] == "1500" and params["connect_timeout"] == "2"
