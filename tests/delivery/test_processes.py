"""Delivery across real processes: a normal exit delivers everything, an exit with AFFY
down stays within AFFY_FLUSH_TIMEOUT, a SIGKILLed process's spool is replayed by the next
one, fork gives the child a fresh queue, and gunicorn --preload workers each deliver."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from affy_middleware.sandbox import SandboxServer

pytestmark = pytest.mark.process

ENQUEUE_SCRIPT = textwrap.dedent(
    """
    import sys
    from affy_middleware import delivery
    from affy_middleware._settings import Settings
    from affy_middleware._wire import Event, lead_value, payment_body

    settings = Settings.from_env()
    backend = delivery.backend_for(settings)
    n, tag = int(sys.argv[1]), sys.argv[2]
    for i in range(n):
        body = payment_body(1, session_id=f"{tag}-{i}", lead_value=lead_value("10.00"))
        assert backend.submit(Event(kind="payment", body=body, order_key=f"{tag}-{i}"))
    print("enqueued", flush=True)
    if len(sys.argv) > 3 and sys.argv[3] == "wait":
        sys.stdin.readline()  # stay alive until killed
    """
)

REPLAY_SCRIPT = textwrap.dedent(
    """
    import json
    from affy_middleware import delivery
    from affy_middleware._settings import Settings

    backend = delivery.backend_for(Settings.from_env())  # replays the spool
    ok = backend.flush(20)
    print(json.dumps({"flushed": ok, "stats": dict(backend.stats())}), flush=True)
    """
)


def env_for(sandbox: SandboxServer, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFFY_")}
    env.update(
        AFFY_CLIENT_ID="1",
        AFFY_API_KEY=sandbox.api_key,
        AFFY_API_URL=sandbox.url,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def run_script(
    tmp_path: Path, code: str, args: list[str], env: dict[str, str]
) -> subprocess.Popen[str]:
    script = tmp_path / f"script_{abs(hash(code))}.py"
    script.write_text(code)
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_line(proc: subprocess.Popen[str], expected: str, timeout: float = 30) -> None:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"no {expected!r} within {timeout} s"
    line = proc.stdout.readline().strip()
    assert line == expected, (line, proc.stderr.read() if proc.stderr else "")


def test_a_normal_exit_delivers_everything(sandbox: SandboxServer, tmp_path: Path) -> None:
    proc = run_script(tmp_path, ENQUEUE_SCRIPT, ["40", "exit"], env_for(sandbox))
    wait_line(proc, "enqueued")
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    keys = [e["idempotency_key"] for e in sandbox.events("payment")]
    assert len(keys) == 40 == len(set(keys))
    assert sandbox.duplicates() == 0


@pytest.mark.parametrize("down", ["outage-503", "hanging"])
def test_exit_with_affy_down_is_bounded_by_the_flush_timeout(
    sandbox: SandboxServer, tmp_path: Path, down: str
) -> None:
    flush_timeout = 1.0
    if down == "hanging":
        sandbox.set_faults(latency=20.0)
    else:
        sandbox.set_faults(outage_seconds=60)
    env = env_for(sandbox, AFFY_FLUSH_TIMEOUT=str(flush_timeout))
    proc = run_script(tmp_path, ENQUEUE_SCRIPT, ["20", "down"], env)
    wait_line(proc, "enqueued")
    start = time.monotonic()
    proc.wait(30)
    elapsed = time.monotonic() - start
    _, err = proc.communicate()
    assert proc.returncode == 0
    assert elapsed <= flush_timeout + 0.5, elapsed
    assert "not delivered at shutdown" in err


@pytest.mark.parametrize("affy", ["down", "up"])
def test_sigkill_then_a_new_process_delivers_the_spool_once(
    sandbox: SandboxServer, tmp_path: Path, affy: str
) -> None:
    n = 30
    spool = tmp_path / "outbox.sqlite"
    env = env_for(sandbox, AFFY_SPOOL_PATH=str(spool))
    if affy == "down":
        sandbox.set_faults(outage_seconds=60)
    else:  # the child is mid-delivery when it dies
        sandbox.set_faults(latency=0.05)
    child = run_script(tmp_path, ENQUEUE_SCRIPT, [str(n), "killed", "wait"], env)
    wait_line(child, "enqueued")
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=10)
    sandbox.clear_faults()

    replay = run_script(tmp_path, REPLAY_SCRIPT, [], env)
    out, err = replay.communicate(timeout=60)
    result = json.loads(out)
    assert result["flushed"], err
    keys = [e["idempotency_key"] for e in sandbox.events("payment")]
    sessions = sorted(e["session_id"] for e in sandbox.events("payment"))
    assert sessions == sorted(f"killed-{i}" for i in range(n))  # every one ...
    assert len(keys) == len(set(keys)) == n  # ... once
    assert result["stats"]["spooled"] == 0
    if affy == "down":
        assert sandbox.duplicates() == 0


FORK_SCRIPT = textwrap.dedent(
    """
    import json, os, threading
    from affy_middleware import delivery
    from affy_middleware._settings import Settings
    from affy_middleware._wire import Event

    settings = Settings(client_id=1, api_url="http://127.0.0.1:9")
    sent, gate = [], threading.Event()

    def send(event):
        gate.wait(10)
        sent.append(event.body["i"])
        return {}

    d = delivery.adopt(settings, delivery.make_backend(settings, send=send))
    for i in range(3):
        d.submit(Event(kind="click", body={"i": i}, order_key="v"))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        before = dict(d.stats())
        gate.set()
        d.submit(Event(kind="click", body={"i": 100}))
        flushed = d.flush(5)
        os.write(w, json.dumps({"sent": sent, "before": before, "flushed": flushed}).encode())
        os._exit(0)
    os.close(w)
    child = json.loads(os.read(r, 65536))
    os.waitpid(pid, 0)
    gate.set()
    print(json.dumps({"parent": sent if d.flush(5) else None, "child": child}))
    """
)


def test_fork_gives_the_child_a_fresh_queue(tmp_path: Path) -> None:
    proc = run_script(tmp_path, FORK_SCRIPT, [], {**os.environ, "PYTHONWARNINGS": "ignore"})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    result = json.loads(out)
    assert result["parent"] == [0, 1, 2]
    assert result["child"]["sent"] == [100]  # nothing of the parent's, sent again
    assert result["child"]["flushed"] is True
    before = result["child"]["before"]
    assert before["queued"] == before["in_flight"] == before["enqueued"] == 0


HOOKLESS_FORK_SCRIPT = textwrap.dedent(
    """
    import ctypes, json, os, threading
    from affy_middleware import delivery
    from affy_middleware._settings import Settings
    from affy_middleware._wire import Event

    settings = Settings(client_id=1, api_url="http://127.0.0.1:9")
    sent, lock = [], threading.Lock()

    def send(event):
        with lock:
            sent.append(event.event_id)
        return {}

    d = delivery.adopt(settings, delivery.make_backend(settings, send=send))
    for i in range(5):
        d.submit(Event(kind="click", body={"i": i}, order_key=f"p{i}"))
    assert d.flush(5)
    r, w = os.pipe()
    pid = ctypes.PyDLL(None).fork()  # in C, as uWSGI forks: no at-fork hook runs
    if pid == 0:
        sent.clear()
        events = [Event(kind="click", body={"i": i}, order_key=f"c{i}") for i in range(8)]
        go = threading.Barrier(4)

        def first_requests(part):  # a fresh worker's first requests, on 4 threads at once
            go.wait(5)
            for event in part:
                d.submit(event)

        threads = [threading.Thread(target=first_requests, args=(events[n::4],))
                   for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        flushed = d.flush(5)
        child = {"ids": [e.event_id for e in events], "sent": sent, "flushed": flushed,
                 "stats": dict(d.stats())}
        os.write(w, json.dumps(child).encode())
        os._exit(0)
    os.close(w)
    parent = [Event(kind="click", body={"i": i}) for i in range(8)]
    for event in parent:
        d.submit(event)
    child = json.loads(os.read(r, 65536))
    os.waitpid(pid, 0)
    print(json.dumps({"parent": [e.event_id for e in parent], "flushed": d.flush(5),
                      "child": child}))
    """
)


def test_a_fork_without_hooks_gets_its_own_ids_queue_and_threads(tmp_path: Path) -> None:
    proc = run_script(tmp_path, HOOKLESS_FORK_SCRIPT, [], dict(os.environ))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    result = json.loads(out)
    child, parent = result["child"], result["parent"]
    assert {i[:16] for i in child["ids"]}.isdisjoint({i[:16] for i in parent})
    assert len(set(child["ids"]) | set(parent)) == 16
    assert child["flushed"] is True and result["flushed"] is True
    assert sorted(child["sent"]) == sorted(child["ids"])  # its own events, each once
    assert child["stats"]["enqueued"] == child["stats"]["sent"] == 8


REGISTRY_FORK_SCRIPT = textwrap.dedent(
    """
    import ctypes, json, os, threading
    from affy_middleware import delivery
    from affy_middleware._settings import Settings

    first = delivery.backend_for(Settings(client_id=1, api_url="http://127.0.0.1:9"))
    held, done = threading.Event(), threading.Event()

    def hold_the_registry_lock():  # a parent's thread creating a backend at fork time
        with delivery._registry.get().lock:
            held.set()
            done.wait(10)

    threading.Thread(target=hold_the_registry_lock, daemon=True).start()
    held.wait(10)
    r, w = os.pipe()
    pid = ctypes.PyDLL(None).fork()  # no at-fork hook: the child inherits the held lock
    if pid == 0:
        got = []
        creator = threading.Thread(target=lambda: got.append(delivery.backend_for(
            Settings(client_id=2, api_url="http://127.0.0.1:9"))), daemon=True)
        creator.start()
        creator.join(5)
        same = delivery.backend_for(Settings(client_id=1, api_url="http://127.0.0.1:9"))
        os.write(w, json.dumps({"created": len(got), "same": same is first}).encode())
        os._exit(0)
    done.set()
    os.close(w)
    print(os.read(r, 4096).decode())
    os.waitpid(pid, 0)
    """
)


def test_a_fork_without_hooks_does_not_inherit_the_registry_lock(tmp_path: Path) -> None:
    # A guard (main had a pid check for this lock too): the registry is per process now.
    proc = run_script(tmp_path, REGISTRY_FORK_SCRIPT, [], dict(os.environ))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out) == {"created": 1, "same": True}


GUNICORN_APP = textwrap.dedent(
    """
    import os, time
    from affy_middleware import delivery
    from affy_middleware._settings import Settings
    from affy_middleware._wire import Event, click_body

    settings = Settings.from_env()
    backend = delivery.backend_for(settings)
    # Enqueued in the master before the fork (--preload): must be sent once, not 4 times.
    backend.submit(Event(kind="click", order_key="master", body=click_body(
        1, affiliate_reference="master", click_id="master", session_id="master")))

    def app(environ, start_response):
        n = environ["QUERY_STRING"]
        pid = os.getpid()
        backend.submit(Event(kind="click", order_key=f"s{n}", body=click_body(
            1, affiliate_reference=f"w{pid}", click_id=f"c{n}", session_id=f"s{n}")))
        time.sleep(0.02)  # some work, so concurrent requests spread over the workers
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(pid).encode()]
    """
)


@pytest.fixture
def gunicorn(sandbox: SandboxServer, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    (tmp_path / "shop_app.py").write_text(GUNICORN_APP)
    gunicorn_bin = Path(sys.executable).parent / "gunicorn"
    proc = subprocess.Popen(
        [
            str(gunicorn_bin),
            "--preload",
            "-w",
            "4",
            "-b",
            "127.0.0.1:0",
            "--graceful-timeout",
            "10",
            "--chdir",
            str(tmp_path),
            "shop_app:app",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env_for(sandbox, AFFY_FLUSH_TIMEOUT="5"),
    )
    assert proc.stderr is not None
    url, booted, deadline = None, 0, time.monotonic() + 30
    while (url is None or booted < 4) and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 1)
        if not ready:
            continue
        line = proc.stderr.readline()
        if not line:
            break
        found = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", line)
        url = found.group(1) if found else url
        booted += "Booting worker" in line
    try:
        assert url is not None and booted == 4, "gunicorn did not start"
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_gunicorn_preload_workers_each_deliver_once(
    sandbox: SandboxServer, gunicorn: tuple[subprocess.Popen[str], str]
) -> None:
    proc, url = gunicorn
    n = 48

    def hit(i: int) -> str:
        return httpx.get(f"{url}/?{i}", timeout=10).text

    with ThreadPoolExecutor(8) as pool:
        pids = list(pool.map(hit, range(n)))
    proc.send_signal(signal.SIGTERM)  # graceful: each worker flushes at exit
    proc.communicate(timeout=30)

    clicks = sandbox.events("click")
    by_click = {e["click_id"]: e for e in clicks}
    assert len(clicks) == len(by_click) == n + 1  # every request's event + the master's
    assert by_click["master"]["affiliate_reference"] == "master"
    for i, pid in enumerate(pids):
        assert by_click[f"c{i}"]["affiliate_reference"] == f"w{pid}"
    assert len(set(pids)) >= 2
    assert sandbox.duplicates() == 0


INLINE_FORK_SCRIPT = textwrap.dedent(
    """
    import ctypes, json, os, threading
    from affy_middleware import delivery
    from affy_middleware._settings import Settings
    from affy_middleware._wire import Event

    settings = Settings(client_id=1, api_url="http://127.0.0.1:9", delivery="sync")
    sent, lock = [], threading.Lock()

    def send(event):
        with lock:
            sent.append(event.event_id)
        return {}

    d = delivery.make_backend(settings, send=send)
    for i in range(5):
        d.submit(Event(kind="click", body={"i": i}, order_key=f"p{i}"))
    r, w = os.pipe()
    pid = ctypes.PyDLL(None).fork()  # in C, as uWSGI forks: no at-fork hook runs
    if pid == 0:
        go = threading.Barrier(4)

        def first_requests(n):  # a fresh worker's first requests, on 4 threads at once
            go.wait(5)
            for i in range(2):
                d.submit(Event(kind="click", body={"i": i}, order_key=f"c{n}{i}"))

        threads = [threading.Thread(target=first_requests, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        os.write(w, json.dumps(dict(d.stats())).encode())
        os._exit(0)
    os.close(w)
    child = json.loads(os.read(r, 65536))
    os.waitpid(pid, 0)
    print(json.dumps({"parent": dict(d.stats()), "child": child}))
    """
)


def test_the_inline_backend_starts_afresh_in_a_hookless_fork(tmp_path: Path) -> None:
    proc = run_script(tmp_path, INLINE_FORK_SCRIPT, [], dict(os.environ))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert (result["parent"]["enqueued"], result["parent"]["sent"]) == (5, 5)
    # The child's 4 threads share one fresh state: all 8 counted, none of the parent's.
    assert (result["child"]["enqueued"], result["child"]["sent"]) == (8, 8)
