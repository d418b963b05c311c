"""``affy sandbox``: the local AFFY served until interrupted."""

from __future__ import annotations

import signal
import subprocess

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


def test_affy_sandbox_on_a_taken_port_exits_1(sandbox: SandboxServer) -> None:
    run = affy("sandbox", "--port", str(sandbox.port), env=env_without_affy(), timeout=30)
    assert run.code == 1
    assert "in use" in run.err
