"""Fixtures of the client tests: a sync client on the sandbox, asyncio for anyio tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from affy_middleware import AffyClient
from affy_middleware.sandbox import SandboxServer


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[AffyClient]:
    with AffyClient(sandbox.settings()) as affy:
        yield affy
