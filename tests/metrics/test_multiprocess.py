"""Prometheus under gunicorn with ``PROMETHEUS_MULTIPROC_DIR``: two workers, both counted."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

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


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url + "/metrics", timeout=5).text
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


@pytest.mark.parametrize("preload", [False, True], ids=["imported-per-worker", "preload"])
@pytest.mark.process
def test_two_gunicorn_workers_are_both_counted(
    tmp_path: Path, sandbox: SandboxServer, preload: bool
) -> None:
    """With ``--preload`` the app is imported once in the master and each forked worker
    starts its own copying thread; the master's files count no events."""
    (tmp_path / "shop.py").write_text(SHOP)
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFFY_")}
    env.update(
        AFFY_CLIENT_ID="1",
        AFFY_API_URL=sandbox.url,
        AFFY_API_KEY=sandbox.api_key or "",
        AFFY_QUEUE_SIZE="1000",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    log = (tmp_path / "gunicorn.log").open("wb")
    options = ["--preload"] if preload else []
    proc = subprocess.Popen(
        [gunicorn, "-w", "2", "-b", f"127.0.0.1:{port}", "--chdir", str(tmp_path), *options]
        + ["shop:app"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    pause = threading.Event()  # never set: its wait() paces the bounded loops below
    try:
        pids: set[int] = set()
        landings = 0
        deadline = time.monotonic() + 60
        # Affiliate landings (one click each) until both workers have served some.
        while (len(pids) < 2 or landings < 20) and landings < 400 and time.monotonic() < deadline:
            try:
                answer = httpx.get(
                    f"{url}/?affy_ref=partner-{landings}",
                    headers={"User-Agent": BROWSER, "Accept": "text/html"},
                    timeout=5,
                )
            except httpx.TransportError:  # gunicorn is still booting
                assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()
                pause.wait(0.1)
                continue
            pids.add(int(answer.text))
            landings += 1
        assert len(pids) == 2, f"{landings} landings, one worker"
        # Each worker copies its stats() every 0.2 s: wait (bounded) for the total.
        delivered = ("affy_events_total", (("kind", "click"), ("outcome", "delivered")))
        found = samples(url)
        while found.get(delivered) != landings and time.monotonic() < deadline:
            pause.wait(0.2)
            found = samples(url)
        assert found[delivered] == landings
        assert len(sandbox.events("click")) == landings
        assert found[("affy_queue_capacity_events", ())] == 2 * 1000  # two live workers
        assert found[("affy_pipeline_paused", ())] == 0
        assert found[("affy_events_dropped_total", (("reason", "queue_full"),))] == 0
        assert found[("affy_events_accepted_total", ())] == landings
        assert found[("affy_pipeline_pauses_total", ())] == 0
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
