"""Shared by the tests in tests/client/: the API key they use, and clients to test with."""

from __future__ import annotations

import socket
from typing import Any

import httpx

from affy_middleware import AffyClient, ClickResult, Settings

SECRET = "test-key"


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def do_click(affy: AffyClient, **changes: Any) -> ClickResult:
    fields: dict[str, Any] = {
        "affiliate_reference": "abc123",
        "click_id": "ck_1",
        "session_id": "sess_1",
        **changes,
    }
    return affy.click(**fields)


def mock_client(handler: Any) -> AffyClient:
    settings = Settings(client_id=1, api_url="https://api.affy.test", api_key=SECRET)
    return AffyClient(settings, transport=httpx.MockTransport(handler))
