"""Every call to AFFY is bounded in total time and in the size of the answer read
(issue 10 items 3 and 4), in both clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from affy_middleware import AffyClient, AsyncAffyClient
from affy_middleware._errors import AffyNetworkError, AffyTimeoutError
from affy_middleware.client.bounded import MAX_ANSWER

URL = "http://127.0.0.1:9"


def trickle() -> Iterator[bytes]:
    for _ in range(40):  # a server slower than any per-read timeout would notice
        time.sleep(0.05)
        yield b" "


async def atrickle() -> AsyncIterator[bytes]:
    for _ in range(40):
        await asyncio.sleep(0.05)
        yield b" "


def endless() -> Iterator[bytes]:
    for _ in range(10_000):  # 640 MB if read whole
        yield b" " * 65536


def test_a_trickling_answer_is_cut_at_the_timeout() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=trickle()))
    with AffyClient(client_id=1, api_url=URL, timeout=0.3, transport=transport) as affy:
        start = time.monotonic()
        with pytest.raises(AffyTimeoutError):
            affy.status("s1")
        assert time.monotonic() - start < 1.0


def test_an_answer_larger_than_the_cap_is_an_error_read_no_further() -> None:
    served = [0]

    def stream() -> Iterator[bytes]:
        for chunk in endless():
            served[0] += len(chunk)
            yield chunk

    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=stream()))
    affy = AffyClient(client_id=1, api_url=URL, transport=transport)
    with affy, pytest.raises(AffyNetworkError) as info:
        affy.status("s1")
    assert info.value.retryable
    assert served[0] <= 2 * MAX_ANSWER + 65536


def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": str(1 << 30)}, content=endless())

    affy = AffyClient(client_id=1, api_url=URL, transport=httpx.MockTransport(handler))
    with affy, pytest.raises(AffyNetworkError, match="bytes or more"):
        affy.status("s1")


def test_we_ask_for_an_uncompressed_answer() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Accept-Encoding"])
        return httpx.Response(200, json={"hasAffiliate": True})

    with AffyClient(client_id=1, api_url=URL, transport=httpx.MockTransport(handler)) as affy:
        assert affy.status("s1").has_affiliate
    assert seen == ["identity"]


@pytest.mark.anyio
async def test_the_async_client_is_bounded_too() -> None:
    slow = httpx.MockTransport(lambda request: httpx.Response(200, content=atrickle()))
    async with AsyncAffyClient(client_id=1, api_url=URL, timeout=0.3, transport=slow) as affy:
        start = time.monotonic()
        with pytest.raises(AffyTimeoutError):
            await affy.status("s1")
        assert time.monotonic() - start < 1.0

    async def big() -> AsyncIterator[bytes]:
        for _ in range(10_000):
            yield b" " * 65536

    huge = httpx.MockTransport(lambda request: httpx.Response(200, content=big()))
    async with AsyncAffyClient(client_id=1, api_url=URL, transport=huge) as affy:
        with pytest.raises(AffyNetworkError, match="bytes or more"):
            await affy.status("s1")


@pytest.fixture
def stalling_server() -> Iterator[str]:
    """A real server on 127.0.0.1 that answers its headers after 0.6 s, sends part of the
    body, then goes silent until the test ends (a proxy that hangs mid-answer)."""
    import socket
    import threading

    done = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            done.wait(0.6)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n{\"sessionId\":"
            )
            done.wait(10)  # bounded: the test ends well before

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        done.set()
        listener.close()
        thread.join(5)


def test_a_stall_mid_body_is_cut_at_the_deadline_not_a_read_timeout_later(
    stalling_server: str,
) -> None:
    # The headers take 0.6 of the 1.0 s; a per-read timeout alone would then wait another
    # whole second for the rest of the body (1.6 s in all).
    with AffyClient(client_id=1, api_url=stalling_server, timeout=1.0) as affy:
        start = time.monotonic()
        with pytest.raises(AffyNetworkError):
            affy.status("s1")
        assert time.monotonic() - start < 1.45
