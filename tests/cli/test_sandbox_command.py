"""``affy sandbox``: the local AFFY served until interrupted."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from _cli import COMMAND, affy, env_without_affy
from _helpers import close_process, read_lines

from affy_middleware.sandbox import SandboxServer


@pytest.mark.process
def test_affy_sandbox_serves_until_interrupted() -> None:
    proc = subprocess.Popen(
        [*COMMAND, "sandbox", "--port", "0", "--api-key", "sb-key"],
        env=env_without_affy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = read_lines(proc.stdout).get(timeout=30)
        assert first.startswith("AFFY sandbox listening on http://127.0.0.1:")
        url = first.split()[-1]
        assert httpx.get(url + "/", timeout=10).status_code == 200
        env = env_without_affy(AFFY_API_URL=url, AFFY_CLIENT_ID="1", AFFY_API_KEY="sb-key")
        assert affy("doctor", env=env).code == 0
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None
        assert "Traceback" not in proc.stderr.read()
    finally:
        close_process(proc)


def test_affy_sandbox_on_a_taken_port_names_it_and_suggests_port_0(
    sandbox: SandboxServer,
) -> None:
    run = affy("sandbox", "--port", str(sandbox.port), env=env_without_affy(), timeout=30)
    assert run.code == 1 and run.out == ""
    assert run.err.startswith(f"affy: error: port {sandbox.port} on 127.0.0.1 is taken")
    assert "  fix: pass --port 0" in run.err


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param("missing-dir/x.db", None, id="missing-directory"),
        pytest.param("notadb.txt", "these are my notes, not a database\n" * 50, id="not-a-db"),
    ],
)
def test_affy_sandbox_with_a_db_it_cannot_open_names_the_file(
    tmp_path: Path, name: str, content: str | None
) -> None:
    db = tmp_path / name
    if content is not None:
        db.write_text(content)
    run = affy("sandbox", "--port", "0", "--db", str(db), env=env_without_affy(), timeout=30)
    assert run.code == 1 and run.out == ""
    assert run.err.startswith(f"affy: error: cannot open the sandbox database '{db}'")
    assert "unexpected" not in run.err
    assert "  fix: pass --db a SQLite file in an existing, writable directory" in run.err
    if content is not None:
        assert db.read_text() == content  # the user's file is left as it was
