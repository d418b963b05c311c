"""Real processes on one PostgreSQL outbox: hosts SIGKILLed with rows, relays racing,
a relay frozen mid-send. AFFY is the sandbox, strict: it refuses a registration whose
click it has not seen, so a lead sent before its click shows as a 404."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator

import psycopg
import pytest
from _cli import COMMAND, env_without_affy
from _helpers import close_process, read_lines
from _postgres import PASSWORD

from affy_middleware._wire import Event, click_body, registration_body
from affy_middleware.delivery.outbox.postgres.store import PostgresOutbox
from affy_middleware.sandbox import SandboxServer

pytestmark = pytest.mark.process

#: A "host": writes the events it is given through the public delivery path, says so,
#: then lives on (AFFY unreachable for it) until it is killed.
HOST = """
import json, sys, time
from affy_middleware import Settings
from affy_middleware._wire import Event, click_body, registration_body
from affy_middleware.delivery import backend_for
backend = backend_for(Settings.from_env())
for kind, i in json.loads(sys.argv[1]):
    session = f"s{i}"
    if kind == "click":
        body = click_body(1, affiliate_reference="p1", click_id=f"c{i}", session_id=session)
    else:
        body = registration_body(click_id=f"c{i}", email=f"u{i}@example.com")
    assert backend.submit(Event(kind=kind, body=body, order_key=session))
print("stored", flush=True)
time.sleep(60)
"""


class Procs:
    def __init__(self) -> None:
        self.started: list[subprocess.Popen[str]] = []

    def start(
        self, args: list[str], env: dict[str, str]
    ) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
        proc = subprocess.Popen(
            args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.started.append(proc)
        assert proc.stdout is not None
        return proc, read_lines(proc.stdout)


@pytest.fixture
def procs() -> Iterator[Procs]:
    made = Procs()
    yield made
    for proc in made.started:
        if proc.poll() is None:
            with_signal(proc, signal.SIGCONT)
        close_process(proc)


def with_signal(proc: subprocess.Popen[str], sig: int) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, sig)


def wait_line(lines: queue.Queue[str], word: str, timeout: float = 15) -> list[str]:
    seen: list[str] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            line = lines.get(timeout=max(0.01, end - time.monotonic()))
        except queue.Empty:
            break
        seen.append(line)
        if word in line:
            return seen
    raise AssertionError(f"no {word!r} within {timeout}s; saw: {''.join(seen)[-2000:]}")


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:  # polling other processes' progress, bounded
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {what}")


def rows(url: str, where: str = "true") -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM affy_outbox WHERE {where}").fetchone()
    assert row is not None
    return int(row[0])


def relay_env(sandbox: SandboxServer, url: str, **extra: str) -> dict[str, str]:
    assert sandbox.api_key is not None
    values = {
        "AFFY_OUTBOX_URL": url,
        "AFFY_CLIENT_ID": "1",
        "AFFY_API_KEY": sandbox.api_key,
        "AFFY_API_URL": sandbox.url,
        "AFFY_FLUSH_TIMEOUT": "3",
    }
    values.update(extra)
    return env_without_affy(**values)


def posts_by_key(sandbox: SandboxServer, *, answered: bool = False) -> Counter[str]:
    """Tracking calls per Idempotency-Key (``answered``: not counting 429s and 5xx)."""
    return Counter(
        r["idempotency_key"]
        for r in sandbox.requests()
        if r["method"] == "POST" and not (answered and (r["status"] == 429 or r["status"] >= 500))
    )


def test_dead_hosts_rows_are_delivered_once_clicks_first(
    sandbox: SandboxServer, pg_url: str, procs: Procs
) -> None:
    visits = 12
    down = relay_env(sandbox, pg_url, AFFY_API_URL="http://127.0.0.1:9")  # AFFY unreachable
    hosts = [
        ("A", [("click", i) for i in range(visits)]),
        ("B", [("registration", i) for i in range(visits)]),
    ]
    for _, steps in hosts:  # A lands the visitors, B signs them up; each is SIGKILLed
        host, lines = procs.start([sys.executable, "-c", HOST, json.dumps(steps)], down)
        wait_line(lines, "stored")
        host.kill()
        host.wait(10)
    assert rows(pg_url) == 2 * visits

    relay, lines = procs.start([*COMMAND, "relay"], relay_env(sandbox, pg_url))
    wait_for(lambda: len(sandbox.events()) >= 2 * visits, 20, "every event delivered")
    started = time.monotonic()
    with_signal(relay, signal.SIGTERM)
    assert relay.wait(10) == 0 and time.monotonic() - started < 5
    events = sandbox.events()
    assert len(events) == 2 * visits and rows(pg_url) == 0
    for i in range(visits):
        kinds = [
            e["kind"] for e in events if e["session_id"] == f"s{i}" or e["click_id"] == f"c{i}"
        ]
        assert kinds[0] == "click" and sorted(kinds) == ["click", "registration"], kinds
    refused = [r for r in sandbox.requests() if r["status"] == 404]
    assert refused == [] and sandbox.duplicates() == 0
    assert set(posts_by_key(sandbox).values()) == {1}  # each event sent exactly once
    output = "".join(wait_line(lines, "stopped"))
    assert PASSWORD not in output and "***" in output


def journeys(prefix: str, n: int) -> list[Event]:
    """Each visit's click then its registration (by click id), keyed by session."""
    events = []
    for i in range(n):
        session, click_id = f"{prefix}{i}", f"{prefix}c{i}"
        click = click_body(1, affiliate_reference="p1", click_id=click_id, session_id=session)
        events.append(Event(kind="click", body=click, order_key=session))
        signup = registration_body(click_id=click_id, email=f"{prefix}{i}@example.com")
        events.append(Event(kind="registration", body=signup, order_key=session))
    return events


def write(url: str, events: list[Event]) -> None:
    outbox = PostgresOutbox(url)
    try:
        for event in events:
            outbox.put(event, claimed=False)
    finally:
        outbox.close()


def test_relays_race_each_event_once_in_visit_order_and_stop_on_sigterm(
    sandbox: SandboxServer, pg_url: str, procs: Procs
) -> None:
    pairs = journeys("r", 16)
    # Written two visits at a time, clicks then leads: c0 c1 r0 r1 c2 c3 r2 r3 ... so that
    # relays taking two rows each would split a visit if the outbox allowed it.
    written = [pairs[i + k] for i in range(0, len(pairs), 4) for k in (0, 2, 1, 3)]
    write(pg_url, written)
    # The first call is answered 429 (retry in 2 s): its relay holds that click meanwhile.
    sandbox.set_faults(latency=0.05, rate_limit=1, retry_after=2)
    relays = []
    for _ in range(3):  # small memories: a visit's click and lead may go to two relays
        env = relay_env(sandbox, pg_url, AFFY_MAX_IN_FLIGHT="2", AFFY_QUEUE_SIZE="2")
        relays.append(procs.start([*COMMAND, "relay"], env))
    wait_for(lambda: len(sandbox.events()) >= len(written), 20, "every event delivered")
    for relay, _ in relays:
        with_signal(relay, signal.SIGTERM)
    started = time.monotonic()
    assert [relay.wait(10) for relay, _ in relays] == [0, 0, 0]
    assert time.monotonic() - started < 5  # AFFY_FLUSH_TIMEOUT=3, and nothing left to send
    sent = posts_by_key(sandbox, answered=True)
    assert sorted(sent) == sorted(e.event_id for e in written)
    assert set(sent.values()) == {1} and sandbox.duplicates() == 0 and rows(pg_url) == 0
    assert [r for r in sandbox.requests() if r["status"] == 404] == []  # no lead first
    assert [r["status"] for r in sandbox.requests()].count(429) == 1


def test_a_frozen_relay_loses_its_claim_and_does_not_send_it_when_resumed(
    sandbox: SandboxServer, pg_url: str, procs: Procs
) -> None:
    written = journeys("f", 3)[::2] + journeys("g", 2)[::2]  # five clicks, five visits
    write(pg_url, written)
    sandbox.set_faults(latency=2.0)  # every send takes 2 s: the first one is mid-flight
    slow = relay_env(sandbox, pg_url, AFFY_MAX_IN_FLIGHT="1", AFFY_TIMEOUT="10")
    frozen, _ = procs.start([*COMMAND, "relay", "--lease", "1"], slow)
    wait_for(lambda: rows(pg_url, "owner_token IS NOT NULL") == 5, 15, "the relay claims all")
    with_signal(frozen, signal.SIGSTOP)
    fast = relay_env(sandbox, pg_url, AFFY_MAX_IN_FLIGHT="8", AFFY_TIMEOUT="10")
    other, _ = procs.start([*COMMAND, "relay", "--lease", "1"], fast)
    wait_for(lambda: rows(pg_url) == 0, 20, "the other relay delivers everything")
    with_signal(frozen, signal.SIGCONT)
    with_signal(frozen, signal.SIGTERM)  # it flushes what it holds first: nothing, now
    with_signal(other, signal.SIGTERM)
    assert frozen.wait(15) == 0 and other.wait(15) == 0
    sent = posts_by_key(sandbox)
    assert sorted(sent) == sorted(e.event_id for e in written)
    # The frozen relay had at most one request on the wire (max_in_flight 1): that one may
    # reach AFFY twice, with the same key (AFFY keeps one); every other row went once.
    twice = [key for key, n in sent.items() if n > 1]
    assert len(twice) <= 1 and max(sent.values()) <= 2
    assert len(sandbox.events()) == len(written)


def test_a_relay_claims_again_as_soon_as_it_has_room(
    sandbox: SandboxServer, pg_url: str, procs: Procs
) -> None:
    written = journeys("b", 100)[::2]  # 100 clicks, 100 visits: all claimable at once
    write(pg_url, written)
    env = relay_env(sandbox, pg_url, AFFY_MAX_IN_FLIGHT="4", AFFY_QUEUE_SIZE="8")
    relay, _ = procs.start([*COMMAND, "relay"], env)
    # Claiming 8 rows once a second would take 12 s or more; refilling when memory is
    # half empty takes a fraction of that.
    wait_for(lambda: len(sandbox.events()) >= len(written), 8, "the backlog drained")
    with_signal(relay, signal.SIGTERM)
    assert relay.wait(10) == 0
    assert set(posts_by_key(sandbox).values()) == {1}
