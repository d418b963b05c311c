"""FastAPI with ``app.add_middleware(AffyASGIMiddleware)`` and a malformed setting: the
server refuses to start (issue 12), instead of answering every request with a 500."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from affy_middleware import AffyASGIMiddleware, AffyConfigError

ROOT = Path(__file__).resolve().parents[2]
APP = """
from fastapi import FastAPI
from affy_middleware import AffyASGIMiddleware

app = FastAPI()
app.add_middleware(AffyASGIMiddleware)

@app.get("/")
def index() -> dict[str, bool]:
    return {"ok": True}
"""


def lifespan_messages(app: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    inbox = [{"type": "lifespan.startup"}]

    async def receive() -> dict[str, Any]:
        return inbox.pop(0) if inbox else await asyncio.sleep(3600)  # type: ignore[func-returns-value]

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def go() -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        await asyncio.wait_for(app(scope, receive, send), 10)

    asyncio.run(go())
    return sent


def test_lifespan_startup_fails_with_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFFY_CLIENT_ID", "abc")
    app = FastAPI()
    app.add_middleware(AffyASGIMiddleware)
    (failed,) = lifespan_messages(app)
    assert failed["type"] == "lifespan.startup.failed"
    assert "AFFY_CLIENT_ID" in failed["message"]


def test_direct_wrapping_still_raises_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFFY_CLIENT_ID", "abc")
    with pytest.raises(AffyConfigError, match="AFFY_CLIENT_ID"):
        AffyASGIMiddleware(FastAPI())


@pytest.mark.process
def test_uvicorn_refuses_to_start(tmp_path: Path) -> None:
    (tmp_path / "badapp.py").write_text(APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFFY_")}
    env.update(AFFY_CLIENT_ID="abc", PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    done = subprocess.run(
        [sys.executable, "-m", "uvicorn", "badapp:app", "--host", "127.0.0.1", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,  # a server that starts anyway never exits by itself
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "AFFY_CLIENT_ID" in output and "Application startup failed" in output
    assert "Uvicorn running" not in output
