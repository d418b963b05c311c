"""``affy outbox init|status|dead|retry|purge`` as real subprocesses, on PostgreSQL and on
the SQLite file; the password never printed."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import psycopg
from _cli import affy, env_without_affy
from _postgres import PASSWORD

from affy_middleware._wire import Event
from affy_middleware.delivery.outbox.postgres.store import PostgresOutbox
from affy_middleware.delivery.outbox.sqlite.store import SqliteOutbox


def events(n: int, kind: str = "click") -> list[Event]:
    return [Event(kind=kind, body={"i": i}, order_key=f"v{i}") for i in range(n)]  # type: ignore[arg-type]


def no_password(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text


def test_postgres_status_dead_retry_purge(pg_url: str) -> None:
    env = env_without_affy(AFFY_OUTBOX_URL=pg_url)
    outbox = PostgresOutbox(pg_url)
    try:
        rows = events(3) + events(2, "registration")
        for row in rows:
            outbox.put(row, claimed=False)
        assert len(outbox.claim(1)) == 1  # one in flight
        outbox.bury(rows[3].event_id, "rejected", '{"error": "Bad Request"}')
        outbox.bury(rows[4].event_id, "rejected", None)
    finally:
        outbox.close()

    status = affy("outbox", "status", "--json", env=env)
    assert status.code == 0, status.text
    data = status.json()
    assert (data["pending"], data["leased"], data["dead"]) == (2, 1, 2)
    assert data["by_kind"]["registration"]["dead"] == 2
    assert data["dead_by_reason"] == {"rejected": 2} and data["oldest_age"] >= 0
    assert "***" in data["outbox"]
    human = affy("outbox", "status", env=env)
    assert "pending 2, leased 1, dead 2" in human.out
    no_password(status.text, human.text)

    dead = affy("outbox", "dead", "--json", env=env).json()["dead"]
    assert {d["event_id"] for d in dead} == {rows[3].event_id, rows[4].event_id}
    assert any(d["answer"] == '{"error": "Bad Request"}' for d in dead)

    retried = affy("outbox", "retry", rows[3].event_id, "--json", env=env)
    assert retried.json()["retried"] == 1
    with psycopg.connect(pg_url) as conn:
        back = conn.execute("SELECT event_id FROM affy_outbox ORDER BY seq DESC LIMIT 1").fetchone()
    assert back == (rows[3].event_id,)  # the same id: the same Idempotency-Key

    assert affy("outbox", "purge", "--older-than", "1h", "--json", env=env).json()["purged"] == 0
    assert affy("outbox", "purge", "--older-than", "0", "--json", env=env).json()["purged"] == 1
    assert affy("outbox", "dead", env=env).out.strip() == "no dead letters"


def test_postgres_init_and_unreachable(pg_url: str) -> None:
    sql = affy("outbox", "init", "--sql", env=env_without_affy())
    assert sql.code == 0 and "CREATE TABLE IF NOT EXISTS affy_outbox_dead" in sql.out
    env = env_without_affy(AFFY_OUTBOX_URL=pg_url)
    init = affy("outbox", "init", env=env)
    assert init.code == 0 and "tables ready" in init.out
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('affy_outbox_dead')").fetchone() != (None,)
    down = env_without_affy(AFFY_OUTBOX_URL=f"postgresql://app:{PASSWORD}@127.0.0.1:9/x")
    for command in (("outbox", "status"), ("relay",)):
        run = affy(*command, env={**down, "AFFY_CLIENT_ID": "1"}, timeout=30)
        assert run.code == 1 and "postgresql://app:***@127.0.0.1:9/x" in run.err, run.text
        no_password(run.text)


def test_sqlite_init_creates_the_file_that_the_processes_then_use(tmp_path: Path) -> None:
    path = tmp_path / "var" / "affy.sqlite"  # neither the file nor its folder exist yet
    env = env_without_affy(AFFY_OUTBOX_URL=f"sqlite:///{path}")
    status = affy("outbox", "status", env=env)
    assert status.code == 1 and "outbox init" in status.err, status.text
    init = affy("outbox", "init", env=env)
    assert init.code == 0 and "tables ready" in init.out, init.text
    assert affy("outbox", "init", env=env).code == 0  # again: nothing changes
    status = affy("outbox", "status", "--json", env=env)
    assert status.code == 0 and json.loads(status.out)["pending"] == 0, status.text
    outbox = SqliteOutbox(str(path))  # the store the web processes open: same tables
    try:
        outbox.put(Event(kind="click", body={}), claimed=False)
        assert outbox.count() == 1
    finally:
        outbox.close()


def test_sqlite_status_dead_retry_purge(tmp_path: Path) -> None:
    path = str(tmp_path / "outbox.db")
    outbox = SqliteOutbox(path)
    rows = events(3)
    for row in rows:
        outbox.put(row, claimed=False)
    outbox.close()
    env = env_without_affy(AFFY_OUTBOX_URL=f"sqlite:///{path}")
    assert affy("outbox", "status", "--json", env=env).json()["pending"] == 3
    with sqlite3.connect(path) as db:  # bury one by hand, as a relay would
        db.execute(
            "CREATE TABLE IF NOT EXISTS affy_outbox_dead (event_id TEXT PRIMARY KEY,"
            " order_key TEXT, kind TEXT, record BLOB NOT NULL, created_at REAL NOT NULL,"
            " reason TEXT NOT NULL, answer TEXT, buried_at REAL NOT NULL)"
        )
        db.execute(
            "INSERT INTO affy_outbox_dead (event_id, record, created_at, reason, buried_at)"
            " SELECT event_id, record, created_at, 'rejected', ? FROM affy_outbox"
            " WHERE event_id = ?",
            (time.time() - 7200, rows[0].event_id),
        )
        db.execute("DELETE FROM affy_outbox WHERE event_id = ?", (rows[0].event_id,))
    data = affy("outbox", "status", "--json", env=env).json()
    assert (data["pending"], data["dead"]) == (2, 1) and data["by_kind"]["click"]["dead"] == 1
    dead = affy("outbox", "dead", "--json", env=env).json()["dead"]
    assert [(d["event_id"], d["kind"], d["reason"]) for d in dead] == [
        (rows[0].event_id, "click", "rejected")
    ]
    assert affy("outbox", "retry", "--all", "--json", env=env).json()["retried"] == 1
    assert affy("outbox", "status", "--json", env=env).json()["pending"] == 3
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO affy_outbox_dead (event_id, record, created_at, reason, buried_at)"
            " VALUES ('old', '{}', 0, 'malformed', ?)",
            (time.time() - 7200,),
        )
    assert affy("outbox", "purge", "--older-than", "3h", "--json", env=env).json()["purged"] == 0
    assert affy("outbox", "purge", "--older-than", "1h", "--json", env=env).json()["purged"] == 1
