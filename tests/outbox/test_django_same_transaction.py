"""Django with the outbox in its own database: the conversion's row is written in the app's
transaction (no window between the commit and the row), for PostgreSQL and SQLite.

Each step runs in a real ``python -m django`` process (``djproject_outbox_tx``) whose
settings are only in ``settings.py``, against the sandbox over HTTP.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("django")

import djproject  # noqa: E402

from affy_middleware.sandbox import SandboxServer  # noqa: E402

pytestmark = pytest.mark.process

Run = Callable[..., dict[str, Any]]


def runner(sandbox: SandboxServer, **env: str) -> Run:
    def run(step: str, session_id: str, amount: str = "1") -> dict[str, Any]:
        done = subprocess.run(
            [djproject.PYTHON, "-m", "django", "djproject_outbox_tx", step, session_id, amount],
            env=djproject.subprocess_env(
                DJPROJECT_AFFY_CLIENT_ID="1",
                DJPROJECT_AFFY_API_URL=sandbox.url,
                DJPROJECT_AFFY_API_KEY=sandbox.api_key or "",
                **env,
            ),
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        seen: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return seen

    run("drain", "s" * 22)  # the first process creates the outbox tables
    return run


@pytest.fixture(params=["postgresql", "postgresql-spelled-otherwise", "sqlite"])
def run(request: pytest.FixtureRequest, sandbox: SandboxServer, tmp_path: Path) -> Run:
    if request.param == "sqlite":
        db = str(tmp_path / "app.db")
        return runner(sandbox, DJPROJECT_DB=db, DJPROJECT_AFFY_OUTBOX_URL=f"sqlite:///{db}")
    url = request.getfixturevalue("pg_url")
    if request.param == "postgresql-spelled-otherwise":  # the same server by another name
        return runner(
            sandbox,
            DJPROJECT_PG_URL=url.replace("@127.0.0.1:", "@localhost:"),
            DJPROJECT_AFFY_OUTBOX_URL=url + "?application_name=relay",
        )
    return runner(sandbox, DJPROJECT_PG_URL=url, DJPROJECT_AFFY_OUTBOX_URL=url)


def payments(sandbox: SandboxServer, session_id: str) -> list[Decimal]:
    return [
        Decimal(str(e["body"]["leadValue"]))
        for e in sandbox.events("payment")
        if e["body"].get("sessionId") == session_id
    ]


def test_the_row_is_written_in_the_transaction_and_sent_after_commit(
    run: Run, sandbox: SandboxServer
) -> None:
    session = "c" * 22
    seen = run("commit", session, "12.50")
    assert "Address" in seen["outbox"]
    assert seen["accepted"] is True
    # In the app's transaction, not in the database until it commits.
    assert seen["inside"] == 1 and seen["outside_before_commit"] == 0
    assert seen["after_transaction"] == 1 or seen["delivered"]
    assert seen["delivered"] is True and seen["after"] == 0
    assert payments(sandbox, session) == [Decimal("12.50")]


def test_a_rollback_takes_the_row_with_it(run: Run, sandbox: SandboxServer) -> None:
    session = "r" * 22
    seen = run("rollback", session, "3")
    assert seen["inside"] == 1 and seen["after_transaction"] == 0
    assert seen["delivered"] is True
    assert payments(sandbox, session) == []


@pytest.mark.parametrize("step", ["savepoint", "outer-rollback"])
def test_a_savepoint_or_its_block_rolled_back_takes_the_row_with_it(
    run: Run, sandbox: SandboxServer, step: str
) -> None:
    session = ("s" if step == "savepoint" else "o") * 22
    seen = run(step, session, "8")
    assert seen["accepted"] is True and seen["in_savepoint"] == 1
    assert seen["inside"] == (0 if step == "savepoint" else 1)
    assert seen["after_transaction"] == 0 and seen["delivered"] is True
    assert payments(sandbox, session) == []


@pytest.mark.parametrize("step", ["other-commit", "other-rollback"])
def test_a_block_on_another_database_decides_alone(
    sandbox: SandboxServer, pg_url: str, tmp_path: Path, step: str
) -> None:
    """The outbox is the default database (PostgreSQL); the app's data and its block are
    on ``other``: the event is sent when that block commits, never if it rolls back."""
    run = runner(
        sandbox,
        DJPROJECT_PG_URL=pg_url,
        DJPROJECT_AFFY_OUTBOX_URL=pg_url,
        DJPROJECT_OTHER_DB=str(tmp_path / "other.db"),
    )
    session = ("m" if step == "other-commit" else "n") * 22
    seen = run(step, session, "9")
    assert seen["accepted"] is True and seen["stats_inside"] == 0  # held for the commit
    assert seen["delivered"] is True and seen["after"] == 0
    expected = [Decimal("9")] if step == "other-commit" else []
    assert seen["stats_after"] == len(expected)
    assert payments(sandbox, session) == expected


def test_a_crash_right_after_the_commit_loses_nothing(run: Run, sandbox: SandboxServer) -> None:
    # With the on-commit hand-over the event would be in this process's memory only.
    session = "k" * 22
    seen = run("crash", session, "7")
    assert seen["after_transaction"] == 1  # committed with the app's data
    drained = run("drain", session)  # any later process (a web worker, affy relay)
    assert drained["delivered"] is True and drained["after"] == 0
    # Once as far as AFFY is concerned (a re-send, if the dying process had sent it,
    # carries the same key).
    assert payments(sandbox, session) == [Decimal("7")]


@pytest.mark.parametrize("store", ["postgresql", "sqlite"])
def test_an_outbox_elsewhere_is_handed_over_on_commit(
    store: str, sandbox: SandboxServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if store == "sqlite":
        db, spool = str(tmp_path / "app.db"), str(tmp_path / "outbox.db")
        run = runner(sandbox, DJPROJECT_DB=db, DJPROJECT_AFFY_OUTBOX_URL=f"sqlite:///{spool}")
    else:  # the same server, another database
        server = request.getfixturevalue("postgres_server")
        app, outbox = server.create_db(), server.create_db()
        run = runner(sandbox, DJPROJECT_PG_URL=app, DJPROJECT_AFFY_OUTBOX_URL=outbox)
    session = "e" * 22
    seen = run("commit", session, "5")
    assert seen["accepted"] is True and seen["inside"] is None  # no outbox table there
    assert seen["delivered"] is True
    assert payments(sandbox, session) == [Decimal("5")]
    rolled = run("rollback", "f" * 22, "6")
    assert rolled["delivered"] is True and payments(sandbox, "f" * 22) == []


def test_a_row_that_cannot_be_written_leaves_the_app_transaction_alone(
    run: Run, sandbox: SandboxServer
) -> None:
    session = "b" * 22
    seen = run("broken", session, "4")
    assert seen["accepted"] is True and seen["inside"] is None  # the table is gone
    assert seen["signups"] == 1  # the app's write after ours committed
    assert seen["delivered"] is True  # handed over on commit instead
    assert payments(sandbox, session) == [Decimal("4")]
