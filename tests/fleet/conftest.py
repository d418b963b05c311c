"""The fleet: a shop under real multi-process servers (gunicorn, uWSGI, uvicorn) reporting
to the sandbox in this process, and visitors walking landing -> signup -> payment.

Everything here uses public names only: the shop wraps its app in ``AffyMiddleware`` and
calls ``report_registration`` / ``report_payment``; the tests read the outcome from the
sandbox's HTTP API (``/_sandbox/events``, ``/_sandbox/requests``). Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from affy_middleware.sandbox import SandboxServer

#: AFFY's registration-by-click path (docs/affy-api.md): the call refused with 404 when
#: AFFY does not know the click yet.
REGISTRATION_PATH = "/api/v1/tracking/registration"
#: A browser, so that the landing counts as a person's navigation.
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"

#: The shop: an affiliate landing on any page, a signup and a payment. Each answer is the
#: worker's pid, so a test can see which worker handled which step.
SHOP = textwrap.dedent(
    """
    import os
    from affy_middleware import AffyMiddleware, report_payment, report_registration

    def shop(environ, start_response):
        path = environ["PATH_INFO"]
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if path == "/signup":
            report_registration(email="fleet@example.com")
        elif path == "/pay":
            report_payment("9.99")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]

    app = AffyMiddleware(shop)
    """
)

#: The same shop as an ASGI app, for uvicorn.
SHOP_ASGI = textwrap.dedent(
    """
    import os
    from affy_middleware import AffyASGIMiddleware, report_payment, report_registration

    async def shop(scope, receive, send):
        if scope["type"] != "http":
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        if scope["path"] == "/signup":
            report_registration(email="fleet@example.com")
        elif scope["path"] == "/pay":
            report_payment("9.99")
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": str(os.getpid()).encode()})

    app = AffyASGIMiddleware(shop)
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def affy_env(sandbox: SandboxServer, **extra: str) -> dict[str, str]:
    """The environment of a process reporting to ``sandbox`` (nothing AFFY_ inherited)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFFY_")}
    env.update(
        AFFY_CLIENT_ID="1",
        AFFY_API_KEY=sandbox.api_key or "",
        AFFY_API_URL=sandbox.url,
        AFFY_FLUSH_TIMEOUT="5",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass
class Served:
    """A shop served by a real server process on ``url``."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    stop_signal: int = signal.SIGTERM
    pids: set[int] = field(default_factory=set)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 15) -> None:
        """Graceful stop (each worker's exit flush runs), killed if it takes too long."""
        if self.proc.poll() is None:
            self.proc.send_signal(self.stop_signal)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _wait_for_workers(served: Served, workers: int, timeout: float = 20) -> None:
    """Until the server answers and ``workers`` distinct pids have answered (bounded)."""
    deadline = time.monotonic() + timeout

    def probe(_: int) -> int | None:
        try:
            return int(httpx.get(served.url + "/health", timeout=2).text)
        except (httpx.HTTPError, ValueError):
            return None

    with ThreadPoolExecutor(8) as pool:
        while len(served.pids) < workers and time.monotonic() < deadline:
            if served.proc.poll() is not None:
                break
            served.pids.update(p for p in pool.map(probe, range(16)) if p is not None)
            if len(served.pids) < workers:
                time.sleep(0.1)  # the server is booting: nothing of ours to wait on
    if len(served.pids) < workers:
        served.stop(5)
        pytest.fail(f"{len(served.pids)} of {workers} workers answered:\n{served.output()}")


ServeShop = Callable[..., Served]


@pytest.fixture
def serve_shop(tmp_path: Path, sandbox: SandboxServer) -> Iterator[ServeShop]:
    """``serve_shop(server, workers, *args, **env)`` starts the shop under ``gunicorn``,
    ``uwsgi`` or ``uvicorn`` (the ASGI shop) with ``workers`` processes and waits until
    each answers."""
    started: list[Served] = []
    (tmp_path / "shop.py").write_text(SHOP)
    (tmp_path / "shop_asgi.py").write_text(SHOP_ASGI)
    bin_dir = Path(sys.executable).parent

    def serve(server: str, workers: int, *args: str, **env: str) -> Served:
        port = free_port()
        if server == "gunicorn":
            cmd = [str(bin_dir / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}"]
            cmd += ["--graceful-timeout", "10", "--chdir", str(tmp_path), *args, "shop:app"]
            stop = signal.SIGTERM
        elif server == "uwsgi":
            cmd = [str(bin_dir / "uwsgi"), "--http-socket", f"127.0.0.1:{port}", "--master"]
            cmd += ["--processes", str(workers), "--chdir", str(tmp_path), "--module", "shop:app"]
            cmd += ["--die-on-term", "--need-app", "--disable-logging", *args]
            stop = signal.SIGTERM
        elif server == "uvicorn":
            cmd = [str(bin_dir / "uvicorn"), "--workers", str(workers), "--host", "127.0.0.1"]
            cmd += ["--port", str(port), "--app-dir", str(tmp_path), "--no-access-log"]
            cmd += [*args, "shop_asgi:app"]
            stop = signal.SIGTERM
        else:
            raise ValueError(server)
        log = tmp_path / f"{server}-{port}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=affy_env(sandbox, **env),
                cwd=tmp_path,
            )
        served = Served(proc, f"http://127.0.0.1:{port}", log, stop)
        started.append(served)
        _wait_for_workers(served, workers)
        return served

    yield serve
    for served in started:
        served.stop(5)


@dataclass
class Journey:
    """One visitor: the session id its landing got, and the worker pid of each step."""

    affiliate: str
    session_id: str = ""
    click_id: str = ""
    workers: list[int] = field(default_factory=list)


@dataclass
class Outcome:
    """What AFFY (the sandbox) ended up with for a set of journeys."""

    refused_registrations: int
    unattributed: int
    lost: dict[str, int]
    replayed: int
    repeated_keys: int
    events: list[dict[str, Any]]

    def summary(self) -> str:
        return (
            f"refused registrations={self.refused_registrations}, "
            f"unattributed leads={self.unattributed}, lost={self.lost}, "
            f"replayed as duplicates={self.replayed}, keys seen twice={self.repeated_keys}"
        )


class Fleet:
    """Visitors for a served shop, and what the sandbox (``affy``) made of them."""

    def __init__(self, affy: httpx.Client) -> None:
        self.affy = affy

    def land(self, url: str, affiliate: str) -> Journey:
        """A visitor lands from an affiliate link: the click, and the visit's cookies."""
        journey = Journey(affiliate)
        with httpx.Client(base_url=url, headers={"User-Agent": BROWSER}, timeout=10) as browser:
            landing = browser.get("/", params={"affy_ref": affiliate})
            journey.workers.append(int(landing.text))
            journey.session_id = browser.cookies.get("affy_session_id") or ""
            journey.click_id = browser.cookies.get("affy_click_id") or ""
        assert journey.session_id and journey.click_id, "the landing set no cookies"
        return journey

    def finish(self, url: str, journey: Journey) -> Journey:
        """The same visitor signs up, then pays, at once."""
        cookies = {"affy_session_id": journey.session_id, "affy_click_id": journey.click_id}
        with httpx.Client(
            base_url=url, headers={"User-Agent": BROWSER}, cookies=cookies, timeout=10
        ) as browser:
            for step in ("/signup", "/pay"):
                journey.workers.append(int(browser.post(step, data={"x": "1"}).text))
        return journey

    def walk(self, url: str, affiliate: str) -> Journey:
        """Landing from an affiliate link, signup, payment, with no pause between them."""
        return self.finish(url, self.land(url, affiliate))

    def walk_many(self, url: str, count: int, *, start: int = 0, threads: int = 8) -> list[Journey]:
        """``count`` visitors walking at once (``threads`` at a time), affiliates aff0..aff6."""
        with ThreadPoolExecutor(threads) as pool:
            return list(
                pool.map(lambda i: self.walk(url, f"aff{i % 7}"), range(start, start + count))
            )

    def land_many(self, url: str, count: int, *, start: int = 0, threads: int = 8) -> list[Journey]:
        with ThreadPoolExecutor(threads) as pool:
            return list(
                pool.map(lambda i: self.land(url, f"aff{i % 7}"), range(start, start + count))
            )

    def finish_all(self, url: str, journeys: list[Journey], threads: int = 8) -> list[Journey]:
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(lambda j: self.finish(url, j), journeys))

    def outcome(self, journeys: list[Journey]) -> Outcome:
        listed = self.affy.get("/_sandbox/events").json()
        events: list[dict[str, Any]] = listed["events"]
        requests = self.affy.get("/_sandbox/requests").json()["requests"]
        refused = sum(1 for r in requests if r["path"] == REGISTRATION_PATH and r["status"] == 404)
        clicks = {e["click_id"] for e in events if e["kind"] == "click"}
        registered = {e["click_id"] for e in events if e["kind"] == "registration"}
        paid = {e["session_id"] for e in events if e["kind"] == "payment"}
        lost = {
            "click": sum(j.click_id not in clicks for j in journeys),
            "registration": sum(j.click_id not in registered for j in journeys),
            "payment": sum(j.session_id not in paid for j in journeys),
        }
        accepted = Counter(
            r["idempotency_key"]
            for r in requests
            if 200 <= r["status"] < 300 and r["idempotency_key"]
        )
        return Outcome(
            refused_registrations=refused,
            unattributed=int(listed["unattributed"]),
            lost=lost,
            replayed=sum(1 for r in requests if r["duplicate"]),
            repeated_keys=sum(n - 1 for n in accepted.values() if n > 1),
            events=events,
        )

    def wait_for_failures(self, expected: int, timeout: float) -> int:
        """Until the sandbox has answered ``expected`` tracking calls with a 5xx (an
        injected outage), or ``timeout`` passes; how many it answered so."""
        deadline = time.monotonic() + timeout
        while True:
            requests = self.affy.get("/_sandbox/requests").json()["requests"]
            failed = sum(1 for r in requests if r["method"] == "POST" and r["status"] >= 500)
            if failed >= expected or time.monotonic() >= deadline:
                return failed
            time.sleep(0.1)  # another process is retrying: polling AFFY is all we can do

    def wait_for_answers(self, expected: int, timeout: float) -> int:
        """Until the sandbox has given ``expected`` final answers (2xx or 404) to tracking
        calls (POSTs: status checks don't count), or ``timeout`` passes; how many it gave."""
        deadline = time.monotonic() + timeout
        while True:
            requests = self.affy.get("/_sandbox/requests").json()["requests"]
            done = sum(
                1
                for r in requests
                if r["method"] == "POST" and (200 <= r["status"] < 300 or r["status"] == 404)
            )
            if done >= expected or time.monotonic() >= deadline:
                return done
            time.sleep(0.1)  # another process is delivering: polling AFFY is all we can do


@pytest.fixture
def affy(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    """The sandbox's own HTTP API (admin and tracking paths)."""
    with httpx.Client(base_url=sandbox.url, timeout=10) as client:
        yield client


@pytest.fixture
def fleet(affy: httpx.Client) -> Fleet:
    return Fleet(affy)


@pytest.fixture
def fleet_env(sandbox: SandboxServer) -> Callable[..., dict[str, str]]:
    """``fleet_env(**AFFY_X)``: the environment of a process reporting to the sandbox."""
    return lambda **extra: affy_env(sandbox, **extra)


# -- a misbehaving AFFY --------------------------------------------------------------------

#: Longest a misbehaving answer goes on (seconds), whoever is waiting for it.
MISBEHAVE_FOR = 8.0


class MisbehavingAFFY:
    """A broken AFFY or proxy on 127.0.0.1: ``answer`` says how to answer each call.

    ``"ok"`` (201, a tiny JSON), ``"redirect"`` (302), ``"unauthorized"`` (401),
    ``"silent"`` (reads the call and answers nothing),
    ``"trickle"`` (200 headers, then one body byte every half second), ``"huge"`` (200 with a
    64 MB body). ``until`` switches to ``"ok"`` at that ``time.monotonic()``. It records
    the Idempotency-Key of every call answered ``ok`` and the bytes of body it wrote.
    """

    def __init__(self) -> None:
        self.answer = "ok"
        self.until = float("inf")
        self.slow_sessions: str | None = None  # trickle only for sessions with this prefix
        self.accepted: list[str] = []
        self.calls = 0
        self.body_bytes = 0
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def misbehave(self, answer: str, seconds: float = MISBEHAVE_FOR) -> None:
        self.answer, self.until = answer, time.monotonic() + seconds

    def _mode(self, body: dict[str, Any]) -> str:
        if time.monotonic() >= self.until:
            return "ok"
        if self.slow_sessions is not None:
            session = str(body.get("sessionId", ""))
            return "trickle" if session.startswith(self.slow_sessions) else "ok"
        return self.answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        affy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {}
                with affy._lock:
                    affy.calls += 1
                mode = affy._mode(body if isinstance(body, dict) else {})
                if mode == "ok":
                    with affy._lock:
                        affy.accepted.append(self.headers.get("Idempotency-Key") or "")
                    self._send(201, b'{"success":true,"leadId":1,"clickId":1}')
                elif mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "https://affy.example/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif mode == "unauthorized":
                    self._send(401, b'{"error":"Unauthorized","message":"Invalid API key"}')
                elif mode == "trickle":
                    self._stream(200, 64, pause=0.5)
                elif mode == "huge":
                    self._stream(200, 64 * 1024 * 1024, pause=0.0)
                elif mode == "silent":
                    affy.stopping.wait(MISBEHAVE_FOR)  # the caller's own bound ends it
                    self.close_connection = True

            def _send(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, status: int, size: int, pause: float) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(size))
                self.end_headers()
                self.wfile.flush()
                chunk = b" " if pause else b" " * 65536
                end = time.monotonic() + MISBEHAVE_FOR
                written = 0
                try:
                    while written < size and time.monotonic() < end:
                        if affy.stopping.wait(pause) if pause else affy.stopping.is_set():
                            break
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        written += len(chunk)
                        with affy._lock:
                            affy.body_bytes += len(chunk)
                except OSError:
                    pass  # the client gave up reading: what a bounded client does
                self.close_connection = True

        return Handler

    def __enter__(self) -> MisbehavingAFFY:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


@pytest.fixture
def broken_affy() -> Iterator[MisbehavingAFFY]:
    with MisbehavingAFFY() as affy:
        yield affy


@dataclass
class Reporter:
    """A Python process running a script of ours; its JSON result and its log."""

    result: dict[str, Any]
    log: str
    seconds: float


RunScript = Callable[..., Reporter]


@pytest.fixture
def run_script(tmp_path: Path) -> RunScript:
    """``run_script(code, env, timeout)``: run ``code`` in a fresh interpreter, which
    prints one JSON line last; fails the test if it outlives ``timeout``."""

    def run(code: str, env: dict[str, str], timeout: float = 20) -> Reporter:
        script = tmp_path / f"script_{abs(hash(code))}.py"
        script.write_text(textwrap.dedent(code))
        start = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, str(script)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate(timeout=10)
            pytest.fail(f"the process did not finish within {timeout} s:\n{err[-3000:]}")
        seconds = time.monotonic() - start
        assert proc.returncode == 0, err[-3000:]
        lines = out.strip().splitlines()
        assert lines, err[-3000:]
        return Reporter(json.loads(lines[-1]), err, seconds)

    return run


def bare_env(url: str, **extra: str) -> dict[str, str]:
    """The environment of a process reporting to the AFFY at ``url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFFY_")}
    env.update(AFFY_CLIENT_ID="1", AFFY_API_KEY="test-key", AFFY_API_URL=url)
    env.update(PYTHONUNBUFFERED="1", AFFY_FLUSH_TIMEOUT="2")
    env.update(extra)
    return env


@pytest.fixture
def env_for() -> Callable[..., dict[str, str]]:
    """``env_for(url, **AFFY_X)``: the environment of a process reporting to ``url``."""
    return bare_env


@pytest.fixture
def down_url() -> str:
    """An AFFY that is down: nothing listens on this loopback port."""
    return f"http://127.0.0.1:{free_port()}"
