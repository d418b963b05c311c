"""A dead letter made by AFFY refusing a payment whose answer echoes the visitor's email:
the email appears nowhere in the stored answer, ``affy outbox dead`` (text and
``--json``), ``affy outbox status`` or the library's log above DEBUG (docs/delivery.md,
"What AFFY's answer may quote"). On the SQLite file and on a real PostgreSQL."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest
from _cli import affy, env_without_affy

from affy_middleware import Settings
from affy_middleware._bodies import lead_value, payment_body
from affy_middleware._wire import Event
from affy_middleware.delivery import make_backend
from affy_middleware.delivery.sending.breaker import RetryPolicy

EMAIL = "Jane.Doe+vip@example.org"
FAST = RetryPolicy(base=0.02, cap=0.1, min_pause=0.01)


class _Refuser(BaseHTTPRequestHandler):
    """An AFFY that refuses every lead with a 422 quoting the customer's email, as a
    validating API does ("customer ... is invalid")."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        email = body.get("customerEmail") or body.get("email") or ""
        answer = json.dumps(
            {"error": "Unprocessable Entity", "message": f"customer {email} is not valid"}
        ).encode()
        self.send_response(422)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return


@pytest.fixture
def refusing_affy() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refuser)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _refused_payment(api_url: str, outbox_url: str) -> None:
    settings = Settings(client_id=1, api_url=api_url, outbox_url=outbox_url)
    backend = make_backend(settings, retry_policy=FAST)
    body = payment_body(1, session_id="s-dead", lead_value=lead_value("49"), customer_email=EMAIL)
    event = Event(kind="payment", body=body, order_key="s-dead")
    try:
        assert backend.submit(event)
        backend.flush(10)
        assert backend.stats()["dead_letters"] == 1
    finally:
        backend.close(2)


def _no_email(*texts: str) -> None:
    for text in texts:
        assert EMAIL.lower() not in text.lower(), text


def _check_everywhere(outbox_url: str, stored: list[str], caplog: pytest.LogCaptureFixture) -> None:
    _no_email(*stored)
    assert any("<redacted>" in answer for answer in stored)  # the answer kept, the email not
    env = env_without_affy(AFFY_OUTBOX_URL=outbox_url)
    for command in (("outbox", "dead"), ("outbox", "dead", "--json"), ("outbox", "status"),
                    ("outbox", "status", "--json")):
        run = affy(*command, env=env)
        assert run.code == 0, run.text
        _no_email(run.text)
    _no_email(*(r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG))
    _no_email(*(json.dumps(r.__dict__, default=str) for r in caplog.records
                if r.levelno > logging.DEBUG))


def test_sqlite_dead_letter_keeps_no_email(
    refusing_affy: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="affy_middleware")
    path = tmp_path / "outbox.db"
    url = f"sqlite:///{path}"
    _refused_payment(refusing_affy, url)
    with sqlite3.connect(path) as conn:
        stored = [row[0] or "" for row in conn.execute("SELECT answer FROM affy_outbox_dead")]
    assert len(stored) == 1
    _check_everywhere(url, stored, caplog)


def test_postgres_dead_letter_keeps_no_email(
    refusing_affy: str, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="affy_middleware")
    _refused_payment(refusing_affy, pg_url)
    with psycopg.connect(pg_url) as conn:
        stored = [row[0] or "" for row in conn.execute("SELECT answer FROM affy_outbox_dead")]
    assert len(stored) == 1
    _check_everywhere(pg_url, stored, caplog)
