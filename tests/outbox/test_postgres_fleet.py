"""Issue 10's fleet journeys with the PostgreSQL outbox: steps of one visit spread over
two gunicorn "hosts" (2 workers each) and AFFY strict. The outbox orders each visit
itself: a lead written while its click is held elsewhere waits in the outbox for its
turn, so no registration is refused and no payment recorded without its affiliate."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import pytest
from _delivery import FAST

from affy_middleware.delivery import make_backend
from affy_middleware.sandbox import SandboxServer

pytestmark = pytest.mark.process

OUTAGE = 5.0


def test_clicks_backing_off_on_one_host_are_not_overtaken_by_the_other(
    serve_shop: Any, fleet: Any, affy: httpx.Client, sandbox: SandboxServer, pg_url: str
) -> None:
    hosts = [serve_shop("gunicorn", 2, AFFY_OUTBOX_URL=pg_url) for _ in range(2)]
    sandbox.set_faults(outage_seconds=OUTAGE)
    landed = fleet.land_many(hosts[0].url, 16)  # their clicks fail and back off on host 1
    failed = fleet.wait_for_failures(3 * 2, timeout=OUTAGE)
    assert affy.get("/_sandbox/faults").json()["outage_seconds"] > 0, "too slow a machine"
    assert failed >= 3 * 2, failed
    sandbox.clear_faults()
    # AFFY is back, host 1's clicks still back off: the visitors sign up and pay on host 2.
    journeys = fleet.finish_all(hosts[1].url, landed)
    fleet.wait_for_answers(3 * len(journeys), timeout=20)
    for host in hosts:
        host.stop()
    result = fleet.outcome(journeys)
    assert result.refused_registrations == 0, result.summary()
    assert result.unattributed == 0, result.summary()
    assert result.lost == {"click": 0, "registration": 0, "payment": 0}, result.summary()
    assert result.replayed == result.repeated_keys == 0, result.summary()


def test_gunicorn_four_workers_through_three_database_restarts(
    serve_shop: Any,
    fleet: Any,
    affy: httpx.Client,
    sandbox: SandboxServer,
    postgres_server: Any,
    pg_url: str,
) -> None:
    """A few hundred requests while PostgreSQL restarts three times: every event gets to
    AFFY once, nothing is left in the outbox, no registration is refused."""
    host = serve_shop("gunicorn", 4, AFFY_OUTBOX_URL=pg_url)
    journeys: list[Any] = []
    for batch in range(3):
        with ThreadPoolExecutor(1) as walker:
            walking = walker.submit(fleet.walk_many, host.url, 70, start=70 * batch)
            with postgres_server.stopped():  # while the batch walks: a restart
                pass
            journeys += walking.result(timeout=120)
    # Bounded past one lease (60 s): a row leased to a worker that lost track of it is
    # claimable by then; seen once in CI (6 of 630 events late), cause not confirmed.
    answered = fleet.wait_for_answers(3 * len(journeys), timeout=90)
    with psycopg.connect(pg_url) as conn:
        waiting = conn.execute(
            "SELECT kind, owner_pid, lease_until > now() FROM affy_outbox ORDER BY seq"
        ).fetchall()
    host.stop()  # SIGTERM: each worker releases or finishes what it holds
    assert "cannot write the outbox" in host.output(), "no restart met a request"
    result = fleet.outcome(journeys)
    assert answered >= 3 * len(journeys), (result.summary(), waiting)
    assert result.lost == {"click": 0, "registration": 0, "payment": 0}, result.summary()
    assert result.refused_registrations == 0 and result.unattributed == 0, result.summary()
    twice = [r for r in affy.get("/_sandbox/requests").json()["requests"] if r["duplicate"]]
    assert result.repeated_keys == 0, (result.summary(), twice, host.output()[-4000:])
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM affy_outbox").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM affy_outbox_dead").fetchone() == (0,)


@pytest.mark.parametrize(
    ("server", "options"),
    [
        ("uvicorn", ()),
        ("uwsgi", ("--enable-threads",)),
        ("uwsgi", ("--enable-threads", "--lazy-apps")),
    ],
)
def test_uvicorn_and_uwsgi_workers_on_the_postgresql_outbox(
    serve_shop: Any,
    fleet: Any,
    affy: httpx.Client,
    sandbox: SandboxServer,
    pg_url: str,
    server: str,
    options: tuple[str, ...],
) -> None:
    """The fleet tests above run gunicorn; the same journeys under two uvicorn workers
    (the ASGI shop) and two uWSGI workers (forked from the master after the app loaded,
    or loading it each): every event once, in order, the outbox empty after SIGTERM."""
    host = serve_shop(server, 2, *options, AFFY_OUTBOX_URL=pg_url)
    journeys = fleet.walk_many(host.url, 30)
    answered = fleet.wait_for_answers(3 * len(journeys), timeout=30)
    host.stop()
    result = fleet.outcome(journeys)
    assert answered >= 3 * len(journeys), result.summary()
    assert result.lost == {"click": 0, "registration": 0, "payment": 0}, result.summary()
    assert result.refused_registrations == 0 and result.unattributed == 0, result.summary()
    assert result.repeated_keys == 0, result.summary()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM affy_outbox").fetchone() == (0,)


@pytest.mark.parametrize("server", ["gunicorn", "uvicorn"])
def test_sigterm_while_affy_answers_nothing_exits_in_time_and_releases_the_rows(
    serve_shop: Any,
    fleet: Any,
    broken_affy: Any,
    sandbox: SandboxServer,
    pg_url: str,
    server: str,
) -> None:
    """AFFY takes the calls and answers nothing. SIGTERM: each worker exits within its
    flush bound (AFFY_FLUSH_TIMEOUT) and gives its unfinished rows back at once, so
    another process sends them without waiting for their leases to run out."""
    broken_affy.misbehave("silent")
    host = serve_shop(
        server, 2, AFFY_OUTBOX_URL=pg_url, AFFY_API_URL=broken_affy.url, AFFY_FLUSH_TIMEOUT="2"
    )
    landed = fleet.land_many(host.url, 12)
    started = time.monotonic()
    host.stop(timeout=30)
    took = time.monotonic() - started
    assert host.proc.returncode is not None and took < 2 + 4, took  # the bound, + a worker's exit
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE owner_token IS NOT NULL"
            " AND lease_until >= now()) FROM affy_outbox"
        ).fetchone()
    assert rows == (len(landed), 0), (rows, host.output()[-3000:])  # all kept, none leased
    relay = make_backend(sandbox.settings(outbox_url=pg_url), retry_policy=FAST)
    try:
        assert relay.flush(20)  # another process: sends them now, not after the leases
    finally:
        relay.close(5, final=True)
    clicks = {e["click_id"] for e in sandbox.events("click")}
    assert {j.click_id for j in landed} <= clicks
