"""FastAPI: a status set on the injected ``Response`` counts like a returned one (issue 12)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response

from affy_middleware import (
    AffyASGIMiddleware,
    Settings,
    delivery,
    track_payment,
    track_registration,
)
from affy_middleware._wire import Event

UA = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"}


@pytest.fixture
def events() -> Iterator[list[Event]]:
    with delivery.capture() as captured:
        yield captured


def make_api() -> FastAPI:
    app = FastAPI()
    app.add_middleware(
        AffyASGIMiddleware, settings=Settings(client_id=5, api_url="http://127.0.0.1:9")
    )

    @app.get("/")
    async def index() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/signup-taken")
    @track_registration
    async def signup_taken(response: Response) -> dict[str, str]:
        response.status_code = 409
        return {"error": "taken"}

    @app.post("/signup-sync-invalid")
    @track_registration
    def signup_sync_invalid(response: Response) -> dict[str, str]:
        response.status_code = 422
        return {"error": "invalid"}

    @app.post("/signup-created")
    @track_registration
    async def signup_created(response: Response, email: str) -> dict[str, str]:
        response.status_code = 201
        return {"ok": email}

    @app.post("/signup-untouched")
    @track_registration
    async def signup_untouched(response: Response, email: str) -> dict[str, str]:
        response.headers["x-app"] = "own"  # a response used, its status left alone
        return {"ok": email}

    @app.post("/pay-declined")
    @track_payment(value="10.00")
    async def pay_declined(response: Response) -> dict[str, str]:
        response.status_code = 402
        return {"error": "declined"}

    return app


def run(*steps: tuple[str, dict[str, Any]]) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=make_api())
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            out = [await client.get("/?ref=aff_status", headers=UA)]
            for path, params in steps:
                out.append(await client.post(path, params=params, headers=UA))
            return out

    return asyncio.run(go())


def test_status_on_the_injected_response_of_400_or_more_reports_nothing(
    events: list[Event],
) -> None:
    _, taken, invalid, declined = run(
        ("/signup-taken", {}), ("/signup-sync-invalid", {}), ("/pay-declined", {})
    )
    assert (taken.status_code, invalid.status_code, declined.status_code) == (409, 422, 402)
    assert [e.kind for e in events] == ["click"]


def test_status_below_400_on_the_injected_response_reports(events: list[Event]) -> None:
    _, created, untouched = run(
        ("/signup-created", {"email": "a@example.com"}),
        ("/signup-untouched", {"email": "b@example.com"}),
    )
    assert (created.status_code, untouched.status_code) == (201, 200)
    assert untouched.headers["x-app"] == "own"
    assert [e.body.get("email") for e in events] == [None, "a@example.com", "b@example.com"]
