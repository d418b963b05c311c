"""Real servers, driven over HTTP through landing -> pricing -> signup -> payment, with the
sandbox (in this process) recording the result:

- the FastAPI shop under uvicorn (default thread delivery; SIGTERM -> lifespan shutdown
  -> the middleware's bounded flush before the process exits),
- the Django shop under gunicorn with two sync workers (WSGI middleware; delivery from
  the workers' background threads, the at-exit flush on SIGTERM),
- the Django shop under uvicorn (ASGI middleware, AFFY_DELIVERY=sync: delivered before
  each response goes out).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from affy_middleware.sandbox import SandboxServer

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
START_TIMEOUT = 60.0


class Server:
    """A server process whose merged output is collected by a thread, so tests can wait
    for a line with a deadline."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str],
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        self.on_line = on_line
        self.proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if self.on_line is not None:
                self.on_line(line)
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append("<EOF>")
            self._changed.notify_all()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = START_TIMEOUT) -> re.Match[str]:
        regex = re.compile(pattern)

        def found() -> re.Match[str] | None:
            for line in self.lines:
                match = regex.search(line)
                if match:
                    return match
            return None

        with self._changed:
            self._changed.wait_for(lambda: found() is not None or "<EOF>" in self.lines, timeout)
            match = found()
        assert match is not None, f"no {pattern!r} within {timeout} s:\n{self.output}"
        return match

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then wait (bounded) for the process and its output to end. Returns the
        exit status (uvicorn re-raises the signal after a clean shutdown: -SIGTERM)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"did not stop within {timeout} s:\n{self.output}") from None
        self._reader.join(10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(10)


def server_env(sandbox: SandboxServer, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AFFY_", "DJANGO_"))}
    env.update(
        AFFY_CLIENT_ID="1",
        AFFY_API_KEY=sandbox.api_key or "",
        AFFY_API_URL=sandbox.url,
        AFFY_FLUSH_TIMEOUT="15",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.kill()


def journey(base_url: str, ref: str) -> dict[str, httpx.Response]:
    """A visitor: affiliate link, pricing, signup form, a failed and a good signup, a
    declined and a good payment, the thank-you page. Works for both shops (Django's
    forms carry a CSRF token)."""
    out: dict[str, httpx.Response] = {}
    with httpx.Client(base_url=base_url, headers={"User-Agent": CHROME}, timeout=30) as client:

        def form_token(response: httpx.Response) -> dict[str, str]:
            token = CSRF.search(response.text)
            return {"csrfmiddlewaretoken": token.group(1)} if token else {}

        out["landing"] = client.get(f"/?ref={ref}&utm_source=newsletter")
        out["pricing"] = client.get("/pricing")
        out["form"] = client.get("/signup?plan=team")
        data = {**form_token(out["form"]), "plan": "team"}
        out["bad"] = client.post("/signup", data={**data, "email": "nope"})
        out["signup"] = client.post(
            "/signup", data={**data, "email": "ann@example.com", "name": "Ann"}
        )
        out["checkout"] = client.get("/checkout")
        pay = form_token(out["checkout"])
        out["declined"] = client.post("/checkout", data={**pay, "card": "12"})
        out["paid"] = client.post("/checkout", data={**pay, "card": "4242 4242 4242 4242"})
        out["thanks"] = client.get("/thanks")
    return out


def check_journey(r: dict[str, httpx.Response], ref: str) -> None:
    assert r["landing"].status_code == 200, r["landing"].text
    landing_cookies = r["landing"].headers.get_list("set-cookie")
    assert sum(c.strip().startswith("affy_") for c in landing_cookies) == 3
    assert f"Referred by {ref}" in r["pricing"].text
    assert r["form"].status_code == 200 and r["bad"].status_code == 400
    assert r["signup"].status_code in (302, 303), r["signup"].text
    assert r["checkout"].status_code == 200 and "Checkout" in r["checkout"].text
    assert r["declined"].status_code == 402
    assert r["paid"].status_code in (302, 303), r["paid"].text
    assert "Thank you, Ann!" in r["thanks"].text


def check_sandbox(sandbox: SandboxServer, ref: str, *, ordered: bool = True) -> None:
    events = sandbox.events()
    if not ordered:  # several worker processes: each delivers its own events
        kinds = ["click", "registration", "payment"]
        events.sort(key=lambda e: kinds.index(e["kind"]))
    assert [(e["kind"], e["affiliate_reference"]) for e in events] == [
        ("click", ref),
        ("registration", ref),
        ("payment", ref),
    ], events
    click, registration, payment = (e["body"] for e in events)
    assert click["source"] == "newsletter"
    assert registration["clickId"] == click["clickId"]
    assert (registration["email"], registration["customerName"]) == ("ann@example.com", "Ann")
    assert payment["sessionId"] == click["sessionId"]
    assert payment["leadValue"] == Decimal("99.00")
    assert sandbox.duplicates() == 0


def test_fastapi_shop_under_uvicorn(sandbox: SandboxServer, servers: list[Server]) -> None:
    at_shutdown: list[int] = []

    def on_line(line: str) -> None:
        if "Application shutdown complete" in line:  # what AFFY had by then
            at_shutdown.append(len(sandbox.events()))

    server = Server(
        [
            str(BIN / "uvicorn"),
            "--factory",
            "examples.fastapi_shop:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--lifespan",
            "on",
        ],
        server_env(sandbox),
        on_line,
    )
    servers.append(server)
    url = server.wait_for(r"Uvicorn running on (http://127\.0\.0\.1:\d+)").group(1)
    server.wait_for("Application startup complete")
    # AFFY answers slowly: the events are still queued when the server is told to stop.
    sandbox.set_faults(latency=0.5)
    check_journey(journey(url, "aff_uvicorn"), "aff_uvicorn")
    assert server.stop() in (0, -signal.SIGTERM)
    # No flush from here: uvicorn's lifespan shutdown waited for the queue.
    assert at_shutdown == [3], server.output
    assert "Traceback" not in server.output and "not delivered" not in server.output
    check_sandbox(sandbox, "aff_uvicorn")


def test_django_shop_under_gunicorn(sandbox: SandboxServer, servers: list[Server]) -> None:
    server = Server(
        [
            str(BIN / "gunicorn"),
            "-w",
            "2",
            "-b",
            "127.0.0.1:0",
            "--graceful-timeout",
            "20",
            "examples.django_shop.wsgi:application",
        ],
        server_env(sandbox, DJANGO_SECRET_KEY="gunicorn-test-secret-key-" + "x" * 30),
    )
    servers.append(server)
    url = server.wait_for(r"Listening at: (http://127\.0\.0\.1:\d+)").group(1)
    server.wait_for("Booting worker")
    # Two workers, one shared secret: the signed session cookie works across both.
    check_journey(journey(url, "aff_gunicorn"), "aff_gunicorn")
    assert server.stop() == 0
    # Each worker flushed its own queue at exit (AFFY_FLUSH_TIMEOUT bounds it). The
    # signup and the payment may be served by different workers, whose queues deliver
    # independently: order holds within a process only, attribution holds regardless.
    assert "Traceback" not in server.output and "not delivered" not in server.output
    check_sandbox(sandbox, "aff_gunicorn", ordered=False)


def test_django_shop_under_uvicorn_asgi(sandbox: SandboxServer, servers: list[Server]) -> None:
    server = Server(
        [
            str(BIN / "uvicorn"),
            "examples.django_shop.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ],
        server_env(sandbox, AFFY_DELIVERY="sync"),
    )
    servers.append(server)
    url = server.wait_for(r"Uvicorn running on (http://127\.0\.0\.1:\d+)").group(1)
    server.wait_for("Application startup complete")
    check_journey(journey(url, "aff_django_asgi"), "aff_django_asgi")
    # Sync delivery: everything is recorded before the responses went out.
    check_sandbox(sandbox, "aff_django_asgi")
    assert server.stop() in (0, -signal.SIGTERM)
    assert "Finished server process" in server.output  # Django: no lifespan, at-exit flush
    assert "Traceback" not in server.output
