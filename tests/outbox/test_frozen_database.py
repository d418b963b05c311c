"""The PostgreSQL outbox when its server freezes (every server process SIGSTOPped: a
frozen host, a paused VM, a lock storm seen from outside). The server's own
``statement_timeout`` never fires then, nor do TCP keepalives; our own bound must
(docs/deployment.md, "Database faults"): each request returns within
``AFFY_OUTBOX_TIMEOUT``, later ones fail fast instead of each paying the bound, and every
conversion is delivered once after the server wakes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from _delivery import FAST
from _postgres import PostgresServer

from affy_middleware._bodies import lead_value, payment_body
from affy_middleware._wire import Event
from affy_middleware.delivery import make_backend
from affy_middleware.delivery.outbox import OutboxError
from affy_middleware.delivery.outbox.postgres.connection import RECONNECT_INTERVAL
from affy_middleware.delivery.outbox.postgres.store import PostgresOutbox
from affy_middleware.sandbox import SandboxServer

BOUND = 1.0
#: What a call may take beyond its bound: the watchdog's wake-up and the error's way back
#: (generous: a loaded 2-core machine).
SLACK = 1.0


def payment(amount: str, visit: str) -> Event:
    body = payment_body(1, session_id=visit, lead_value=lead_value(amount))
    return Event(kind="payment", body=body, order_key=visit)


def timed(call: object) -> tuple[float, BaseException | None]:
    start = time.monotonic()
    try:
        call()  # type: ignore[operator]
    except Exception as exc:
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


def test_a_write_to_a_frozen_server_is_cut_at_the_bound_then_fails_fast(
    postgres_server: PostgresServer, pg_url: str
) -> None:
    outbox = PostgresOutbox(pg_url, wait=BOUND)
    cut_off = payment("1", "v1")
    try:
        outbox.put(payment("0", "v0"), claimed=True)  # a live connection to freeze
        with postgres_server.frozen():
            took, error = timed(lambda: outbox.put(cut_off, claimed=True))
            assert isinstance(error, OutboxError) and "AFFY_OUTBOX_TIMEOUT" in str(error)
            assert took < BOUND + SLACK, took
            took, error = timed(lambda: outbox.put(payment("2", "v2"), claimed=True))
            assert isinstance(error, OutboxError) and took < BOUND / 2, took  # fails fast
        deadline = time.monotonic() + RECONNECT_INTERVAL + 10
        while True:  # bounded: the fail-fast window, then a reconnect
            try:
                # The write that was cut off ran when the server woke: writing it again
                # finds it, leased to this handle, as if the first write had answered.
                assert outbox.put(cut_off, claimed=True) is True
                break
            except OutboxError:
                assert time.monotonic() < deadline, "the outbox never came back"
                time.sleep(0.05)
        assert outbox.holds(cut_off.event_id)
        assert outbox.count() == 2  # v0 and v1, each once; v2 was never written
    finally:
        outbox.close()


def test_requests_during_a_freeze_return_within_the_bound_and_nothing_is_lost(
    sandbox: SandboxServer, postgres_server: PostgresServer, pg_url: str
) -> None:
    settings = sandbox.settings(outbox_url=pg_url, outbox_timeout=BOUND)
    backend = make_backend(settings, retry_policy=FAST)
    visits = [f"visit-{i}" for i in range(8)]
    try:
        assert backend.submit(payment("1", "warm-up")) and backend.flush(10)
        took: list[float] = []
        accepted: list[bool] = []
        with postgres_server.frozen():
            for i, visit in enumerate(visits):  # a request thread each, as a server runs
                event = payment(str(i + 2), visit)
                thread = threading.Thread(target=lambda e=event: accepted.append(backend.submit(e)))
                start = time.monotonic()
                thread.start()
                thread.join(BOUND + 5)
                took.append(time.monotonic() - start)
        assert accepted == [True] * len(visits)
        assert max(took) < BOUND + SLACK, took  # no request held by the frozen server
        assert sum(took) < 2 * (BOUND + SLACK), took  # and not each paying the bound
        assert backend.flush(RECONNECT_INTERVAL + 20)  # the server is awake again
    finally:
        backend.close(5, final=True)
    values = sorted(float(e["lead_value"]) for e in sandbox.events("payment"))
    assert values == [float(n) for n in range(1, len(visits) + 2)], values
    assert len({e["idempotency_key"] for e in sandbox.events("payment")}) == len(values)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM affy_outbox").fetchone() == (0,)


@pytest.fixture
def tiny_server(postgres_server: PostgresServer) -> Iterator[PostgresServer]:
    """A server of its own that takes 4 connections in all."""
    server = PostgresServer(postgres_server.bindir, max_connections=4)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_max_connections_reached_is_said_naming_the_setting_and_nothing_hangs(
    sandbox: SandboxServer, tiny_server: PostgresServer
) -> None:
    url = tiny_server.create_db()
    others = [psycopg.connect(url, autocommit=True) for _ in range(3)]  # other workers
    try:
        first = PostgresOutbox(url, wait=BOUND)  # takes the last connection
        try:
            took, error = timed(lambda: PostgresOutbox(url, wait=BOUND))
            assert isinstance(error, OutboxError), error
            assert "max_connections" in str(error) and tiny_server.url() not in str(error)
            assert took < 15  # set-up time: libpq's own connect bound, not a hang
        finally:
            first.close()
        # A worker whose outbox cannot connect keeps its events in memory and sends them.
        settings = sandbox.settings(outbox_url=url, outbox_timeout=BOUND)
        extra = psycopg.connect(url, autocommit=True)  # the server is full again
        backend = make_backend(settings, retry_policy=FAST)
        try:
            took, error = timed(lambda: backend.submit(payment("5", "full")))
            assert error is None and took < BOUND + 2.5  # OPEN_WAIT, then memory
            assert backend.flush(10)
            assert backend.stats()["outbox_errors"] >= 1
        finally:
            backend.close(5, final=True)
            extra.close()
    finally:
        for conn in others:
            conn.close()
    assert [float(e["lead_value"]) for e in sandbox.events("payment")] == [5.0]


def test_a_server_stopped_then_started_loses_nothing_and_delivery_resumes_by_itself(
    sandbox: SandboxServer, postgres_server: PostgresServer, pg_url: str
) -> None:
    """Stopped (not restarted) for several reconnection rounds while AFFY is failing
    too: the events live in memory, and once the server is back they go to the outbox
    and then to AFFY, with nothing done by hand."""
    settings = sandbox.settings(outbox_url=pg_url, outbox_timeout=BOUND)
    backend = make_backend(settings, retry_policy=FAST)
    events = [payment(str(n + 1), f"visit-{n % 5}") for n in range(30)]
    try:
        assert backend.submit(payment("100", "warm-up")) and backend.flush(10)
        sandbox.set_faults(error_rate=1.0)  # AFFY answers 503: nothing can be delivered
        with postgres_server.stopped():
            took = []
            for e in events:  # requests arriving over ~6 s: several fail-fast windows
                took.append(timed(lambda e=e: backend.submit(e)))
                time.sleep(0.2)  # the visitors' pace, not a wait for our own threads
            assert all(error is None for _, error in took)
            assert max(t for t, _ in took) < BOUND + SLACK + 1.5, took  # (OPEN_WAIT once)
            stats = backend.stats()
            assert stats["queued"] + stats["in_flight"] == len(events)  # all in memory
            assert stats["dropped"] == 0 and stats["outbox_errors"] >= 1  # not stored
        sandbox.clear_faults()
        assert backend.flush(RECONNECT_INTERVAL + 30)
    finally:
        backend.close(5, final=True)
    values = sorted(float(e["lead_value"]) for e in sandbox.events("payment"))
    assert values == sorted([100.0] + [float(n + 1) for n in range(30)]), values
    assert sandbox.duplicates() == 0
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM affy_outbox").fetchone() == (0,)
