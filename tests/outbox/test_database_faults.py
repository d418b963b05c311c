"""The PostgreSQL outbox when its database misbehaves at the worst moment (docs/deployment.md,
"Database faults"): connections terminated right after AFFY accepted an event, before
its row is deleted. The row must not strand its visit: it is deleted once the database
answers, never sent again by this process, and the visit's later leads go on."""

from __future__ import annotations

import threading

import psycopg
from _postgres import PostgresServer

from affy_middleware._bodies import lead_value, payment_body
from affy_middleware._wire import Event
from affy_middleware.client import AffyClient
from affy_middleware.delivery import make_backend
from affy_middleware.delivery.outbox.postgres.store import PostgresOutbox
from affy_middleware.delivery.sending.breaker import RetryPolicy
from affy_middleware.sandbox import SandboxServer

FAST = RetryPolicy(base=0.02, cap=0.1, min_pause=0.01)


def payment(amount: str, visit: str = "visit-1") -> Event:
    body = payment_body(1, session_id=visit, lead_value=lead_value(amount))
    return Event(kind="payment", body=body, order_key=visit)


def _terminate_outbox_connections(server: PostgresServer, database: str) -> int:
    with psycopg.connect(server.url(), autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND application_name = 'affy_middleware'",
            (database,),
        ).fetchall()
    return len(rows)


def test_connections_terminated_after_affy_accepted(
    sandbox: SandboxServer, postgres_server: PostgresServer, pg_url: str
) -> None:
    settings = sandbox.settings(outbox_url=pg_url)
    database = pg_url.rsplit("/", 1)[1]
    client = AffyClient(settings)
    terminated = threading.Event()

    def send(event: Event) -> object:
        answer = client.send_event(event)
        if not terminated.is_set():  # AFFY accepted; the row's delete comes next
            assert _terminate_outbox_connections(postgres_server, database) >= 1
            terminated.set()
        return answer

    backend = make_backend(settings, send=send, retry_policy=FAST)
    try:
        assert backend.submit(payment("1"))
        assert terminated.wait(10)
        assert backend.flush(10)
        # Another worker writes the visit's next payment: it waits behind the first row,
        # which must go once the database answers again (it used to stay leased for good).
        other = PostgresOutbox(pg_url)
        try:
            other.put(payment("2"), claimed=False)
        finally:
            other.close()
        assert backend.flush(15)
        assert backend.submit(payment("3"))  # and the worker keeps running
        assert backend.flush(15)
    finally:
        backend.close(5, final=True)
        client.close()
    values = sorted(str(e["lead_value"]) for e in sandbox.events("payment"))
    assert values == ["1", "2", "3"] or values == ["1.00", "2.00", "3.00"], values
    assert len(sandbox.requests()) == 3  # none sent twice
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM affy_outbox").fetchone() == (0,)
