"""The thread backend over the PostgreSQL outbox, delivering to the sandbox over HTTP;
and PostgreSQL going away at run time: the request never sees it."""

from __future__ import annotations

import logging
import time

import psycopg
import pytest
from _postgres import PASSWORD

from affy_middleware._wire import Event, click_body, lead_value, payment_body, registration_body
from affy_middleware.delivery import Backend, make_backend
from affy_middleware.sandbox import SandboxServer


def journey(i: int) -> list[Event]:
    session = f"pgsess{i}"
    click = click_body(1, affiliate_reference="partner1", click_id=f"c{i}", session_id=session)
    pay = payment_body(1, session_id=session, lead_value=lead_value("9.99"))
    return [
        Event(kind="click", body=click, order_key=session),
        Event(kind="payment", body=pay, order_key=session),
    ]


def rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT count(*) FROM affy_outbox").fetchone()[0])  # type: ignore[index]


def test_events_go_through_postgres_to_affy_in_visit_order(
    sandbox: SandboxServer, pg_url: str, made: list[Backend]
) -> None:
    backend = make_backend(sandbox.settings(outbox_url=pg_url, max_in_flight=4))
    made.append(backend)
    sent = [e for i in range(15) for e in journey(i)]
    assert all(backend.submit(e) for e in sent)
    assert backend.flush(10)
    events = sandbox.events()
    assert sorted(e["idempotency_key"] for e in events) == sorted(e.event_id for e in sent)
    for i in range(15):
        kinds = [e["kind"] for e in events if e["session_id"] == f"pgsess{i}"]
        assert kinds == ["click", "payment"]
    assert sandbox.unattributed() == 0 and sandbox.duplicates() == 0
    assert rows(pg_url) == 0 and backend.stats()["spooled"] == 0


def test_postgres_going_away_falls_back_to_memory_without_the_password(
    sandbox: SandboxServer,
    pg_url: str,
    made: list[Backend],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "affy_middleware")
    backend = make_backend(sandbox.settings(outbox_url=pg_url))
    made.append(backend)
    first = journey(0)
    assert all(backend.submit(e) for e in first) and backend.flush(10)
    name = pg_url.rsplit("/", 1)[1]
    admin_url = pg_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        later = journey(1)
        assert all(backend.submit(e) for e in later)  # never raises into the request
        assert backend.flush(10)
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    keys = {e["idempotency_key"] for e in sandbox.events()}
    assert {e.event_id for e in first + later} <= keys
    stats = backend.stats()  # issue 11's name, and the older one kept as its alias
    assert stats["outbox_errors"] >= 1 and stats["spool_errors"] == stats["outbox_errors"]
    assert PASSWORD not in caplog.text
    assert any("***" in r.getMessage() for r in caplog.records)


def test_a_lead_waits_in_the_outbox_while_another_process_holds_its_click(
    sandbox: SandboxServer, pg_url: str, made: list[Backend]
) -> None:
    # Two backends on one outbox stand for two web processes; a cannot reach AFFY.
    a = make_backend(sandbox.settings(outbox_url=pg_url, api_url="http://127.0.0.1:9"))
    b = make_backend(sandbox.settings(outbox_url=pg_url))
    made += [a, b]
    click = journey(7)[0]
    signup = Event(
        kind="registration",
        body=registration_body(click_id="c7", email="u7@example.com"),
        order_key="pgsess7",
    )
    assert a.submit(click) and b.submit(signup)
    # Not its turn: b's row waits in the outbox behind the click a holds (b keeps no lease).
    assert b.flush(5)
    assert b.stats()["spooled"] == 2 and sandbox.events() == []
    a.close(0.5, final=True)  # a exits, giving its click back: b's relay takes the visit over
    deadline = time.monotonic() + 15
    while len(sandbox.events()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # b's lease keeper claims about once a second
    assert [e["kind"] for e in sandbox.events()] == ["click", "registration"]
    assert [r for r in sandbox.requests() if r["status"] == 404] == []
