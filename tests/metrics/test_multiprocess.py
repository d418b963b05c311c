"""Prometheus under gunicorn with ``PROMETHEUS_MULTIPROC_DIR``: two workers, both counted
(their delivery durations too), and the outbox they share counted once."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from affy_middleware._wire import Event
from affy_middleware.delivery.outbox.sqlite.store import SqliteOutbox
from affy_middleware.sandbox import SandboxServer

SHOP = textwrap.dedent(
    """
    import os
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess
    from affy_middleware import AffyMiddleware
    from affy_middleware.metrics import register_prometheus

    register_prometheus(sample_interval=0.2)  # copy stats() often, for the test

    def shop(environ, start_response):
        if environ["PATH_INFO"] == "/metrics":
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [generate_latest(registry)]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]

    app = AffyMiddleware(shop)
    """
)
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(url: str) -> Samples:
    text = httpx.get(url + "/metrics", timeout=5).text
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


@contextlib.contextmanager
def gunicorn(tmp_path: Path, env: dict[str, str], preload: bool) -> Iterator[str]:
    """``shop:app`` under gunicorn with 2 workers; its URL. Stopped at the end."""
    (tmp_path / "shop.py").write_text(SHOP)
    port = free_port()
    binary = str(Path(sys.executable).parent / "gunicorn")
    log = (tmp_path / "gunicorn.log").open("wb")
    options = ["--preload"] if preload else []
    proc = subprocess.Popen(
        [binary, "-w", "2", "-b", f"127.0.0.1:{port}", "--chdir", str(tmp_path), *options]
        + ["shop:app"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    try:
        yield f"http://127.0.0.1:{port}"
        assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def worker_env(tmp_path: Path, sandbox: SandboxServer, **extra: str) -> dict[str, str]:
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFFY_")}
    env.update(
        AFFY_CLIENT_ID="1",
        AFFY_API_URL=sandbox.url,
        AFFY_API_KEY=sandbox.api_key or "",
        AFFY_QUEUE_SIZE="1000",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        **extra,
    )
    return env


def land_on_both_workers(url: str, deadline: float) -> int:
    """Affiliate landings (one click each) until both workers have served some; how many."""
    pause = threading.Event()  # never set: its wait() paces the bounded loop
    pids: set[int] = set()
    landings = 0
    while (len(pids) < 2 or landings < 20) and landings < 400 and time.monotonic() < deadline:
        try:
            answer = httpx.get(
                f"{url}/?affy_ref=partner-{landings}",
                headers={"User-Agent": BROWSER, "Accept": "text/html"},
                timeout=5,
            )
        except httpx.TransportError:  # gunicorn is still booting
            pause.wait(0.1)
            continue
        pids.add(int(answer.text))
        landings += 1
    assert len(pids) == 2, f"{landings} landings, one worker"
    return landings


def wait_for(url: str, want: Callable[[Samples], bool], deadline: float) -> Samples:
    """The scrape once ``want`` holds of it (each worker copies its stats() every 0.2 s),
    or the last one at the deadline."""
    pause = threading.Event()
    found = samples(url)
    while not want(found) and time.monotonic() < deadline:
        pause.wait(0.2)
        found = samples(url)
    return found


@pytest.mark.parametrize("preload", [False, True], ids=["imported-per-worker", "preload"])
@pytest.mark.process
def test_two_gunicorn_workers_are_both_counted(
    tmp_path: Path, sandbox: SandboxServer, preload: bool
) -> None:
    """With ``--preload`` the app is imported once in the master and each forked worker
    starts its own copying thread; the master's files count no events."""
    deadline = time.monotonic() + 60
    with gunicorn(tmp_path, worker_env(tmp_path, sandbox), preload) as url:
        landings = land_on_both_workers(url, deadline)
        delivered = ("affy_events_total", (("kind", "click"), ("outcome", "delivered")))
        found = wait_for(url, lambda f: f.get(delivered) == landings, deadline)
        assert found[delivered] == landings
        assert len(sandbox.events("click")) == landings
        assert found[("affy_queue_capacity_events", ())] == 2 * 1000  # two live workers
        assert found[("affy_pipeline_paused", ())] == 0
        assert found[("affy_events_dropped_total", (("reason", "queue_full"),))] == 0
        assert found[("affy_events_accepted_total", ())] == landings
        assert found[("affy_pipeline_pauses_total", ())] == 0
        # Each worker observed its own calls to AFFY; the scrape merges both workers'.
        timed = (("kind", "click"), ("status_class", "2xx"))
        assert found[("affy_delivery_seconds_count", timed)] == landings
        every = (("kind", "click"), ("le", "+Inf"), ("status_class", "2xx"))
        assert found[("affy_delivery_seconds_bucket", every)] == landings
        assert found[("affy_delivery_seconds_sum", timed)] > 0


def seed_outbox(path: Path) -> dict[str, float]:
    """A row another live host holds for an hour, a row of its visit waiting behind it,
    and three dead letters; the states every worker then reads."""
    SqliteOutbox(str(path)).close()  # the tables
    first = Event(kind="click", body={}, order_key="visit")
    behind = Event(kind="registration", body={}, order_key="visit")
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO affy_outbox (seq, event_id, record, created_at, order_key,"
            " owner_host, owner_pid, owner_token, lease_until)"
            " VALUES (-2, ?, ?, ?, 'visit', 'another-host', 1, 'elsewhere', ?)",
            (first.event_id, first.to_record(), time.time(), time.time() + 3600),
        )
        db.execute(
            "INSERT INTO affy_outbox (seq, event_id, record, created_at, order_key)"
            " VALUES (-1, ?, ?, ?, 'visit')",
            (behind.event_id, behind.to_record(), time.time()),
        )
        for i in range(3):
            db.execute(
                "INSERT INTO affy_outbox_dead (event_id, record, created_at, reason,"
                " buried_at) VALUES (?, '{}', 0, 'rejected', 0)",
                (f"refused-{i}",),
            )
    return {"pending": 1, "leased": 1, "dead": 3}


@pytest.mark.process
def test_the_shared_outbox_is_counted_once_not_once_per_worker(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    spool = tmp_path / "outbox.sqlite"
    expected = seed_outbox(spool)
    deadline = time.monotonic() + 60
    env = worker_env(tmp_path, sandbox, AFFY_SPOOL_PATH=str(spool))
    with gunicorn(tmp_path, env, preload=False) as url:
        landings = land_on_both_workers(url, deadline)
        delivered = ("affy_events_total", (("kind", "click"), ("outcome", "delivered")))
        # Both workers have copied their stats() (outbox states included) once this holds.
        wait_for(url, lambda f: f.get(delivered) == landings, deadline)

        def states(found: Samples) -> dict[str, float | None]:
            return {s: found.get(("affy_outbox_events", (("state", s),))) for s in expected}

        found = wait_for(url, lambda f: states(f) == expected, deadline)
        assert found[delivered] == landings
        assert states(found) == expected  # a sum over the 2 workers would say twice as many
