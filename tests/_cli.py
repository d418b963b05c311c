"""The ``affy`` console script run as a real subprocess, for the tests in tests/cli/.

The tests check the contract of a command-line tool: the exit code, where the words go
(stdout for results, stderr for problems), no traceback and the API key never printed (these
two on every run, in :func:`affy`).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from affy_middleware.sandbox import SandboxServer

SCRIPT = Path(sys.executable).parent / "affy"
#: The installed console script; `python -m affy_middleware.cli` if it is not installed.
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "affy_middleware.cli"]
WRONG_KEY = "wrong-key-7d1f"


def env_without_affy(**affy: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFFY_")}
    env.update(affy)
    return env


def sandbox_env(sandbox: SandboxServer, **extra: str) -> dict[str, str]:
    assert sandbox.api_key is not None
    values = {
        "AFFY_API_URL": sandbox.url,
        "AFFY_CLIENT_ID": "1",
        "AFFY_API_KEY": sandbox.api_key,
    }
    values.update(extra)
    return env_without_affy(**values)


class Run:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    @property
    def text(self) -> str:
        return self.out + self.err

    def json(self) -> Any:
        return json.loads(self.out)


def affy(*args: str, env: dict[str, str], timeout: float = 60) -> Run:
    proc = subprocess.run(
        [*COMMAND, *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    run = Run(proc)
    assert "Traceback" not in run.text, run.text
    for secret in ("test-key", WRONG_KEY):
        # The key may appear in our own command line, never in the tool's output.
        assert secret not in run.text, run.text
    return run


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
