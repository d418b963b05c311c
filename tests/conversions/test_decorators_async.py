"""An ``async def`` view under ``AFFY_DELIVERY=sync`` sends without blocking the event loop."""

from __future__ import annotations

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from affy_middleware import AffyASGIMiddleware, identify, track_registration
from affy_middleware.sandbox import SandboxServer

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/150.0 Safari/537.36"}
LATENCY = 0.5


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@track_registration
async def signup(request: Request) -> PlainTextResponse:
    identify(email="ada@example.com")
    return PlainTextResponse("welcome")


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("home")


@pytest.mark.anyio
async def test_sync_delivery_from_an_async_view_leaves_the_loop_free(
    sandbox: SandboxServer,
) -> None:
    app = AffyASGIMiddleware(
        Starlette(routes=[Route("/", home), Route("/signup", signup, methods=["POST"])]),
        settings=sandbox.settings(delivery="sync"),
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://shop.test", headers=BROWSER
    ) as client:
        await client.get("/?ref=aff_async")
        assert sandbox.events("click"), "sync delivery sends the click before answering"

        sandbox.set_faults(latency=LATENCY)
        ticks = 0
        done = anyio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await anyio.sleep(0.01)

        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            with anyio.fail_after(10):
                response = await client.post("/signup")
            done.set()
        assert response.text == "welcome"

    # Sync mode: the registration is recorded by the time the response is out...
    (registration,) = sandbox.events("registration")
    assert registration["body"]["email"] == "ada@example.com"
    # ...and the loop kept running while the view's event was being sent (0.5 s of AFFY
    # latency is ~50 ticks; a blocked loop gets one or two).
    assert ticks >= 10, f"the event loop was blocked: {ticks} ticks in {LATENCY} s"
