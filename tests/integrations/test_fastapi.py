"""FastAPI and Starlette under AffyASGIMiddleware: add_middleware, the CurrentVisit
dependency, the decorators on async and sync endpoints, and the example shop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import BackgroundTasks, FastAPI, HTTPException, Request
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse
from starlette.routing import Route

from affy_middleware import (
    AffyASGIMiddleware,
    Settings,
    current_visit,
    delivery,
    identify,
    set_lead_value,
    track_payment,
    track_registration,
)
from affy_middleware._wire import Event
from affy_middleware.fastapi import CurrentVisit
from affy_middleware.sandbox import SandboxServer
from examples.fastapi_shop import create_app

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
UA = {"User-Agent": CHROME}
SETTINGS = Settings(client_id=5, api_url="http://127.0.0.1:9")


@pytest.fixture
def events() -> Iterator[list[Event]]:
    with delivery.capture() as captured:
        yield captured


@contextlib.asynccontextmanager
async def client_for(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        yield client


class Signup(BaseModel):
    email: str
    full_name: str
    plan: str = "pro"


def make_api() -> FastAPI:
    app = FastAPI()
    app.add_middleware(AffyASGIMiddleware, settings=SETTINGS)
    background: list[Any] = []
    app.state.background = background

    @app.get("/")
    async def index(request: Request, visit: CurrentVisit) -> dict[str, Any]:
        state = request.state.affy_visit
        return {
            "ref": visit.affiliate_reference if visit else None,
            "same": visit is current_visit() is state,
        }

    @app.get("/sync")
    def sync_index(visit: CurrentVisit) -> dict[str, Any]:
        current = current_visit()  # a worker thread: the context was copied
        return {"ref": current.affiliate_reference if current else None, "same": visit is current}

    @app.post("/signup", status_code=201)
    @track_registration
    async def signup(payload: Signup) -> dict[str, str]:
        return {"welcome": payload.full_name}

    @app.post("/signup-identified")
    @track_registration
    async def signup_identified(background_tasks: BackgroundTasks) -> dict[str, bool]:
        identify(email="ann@example.com", customer_id=7, name="Ann")

        def after() -> None:
            visit = current_visit()
            background.append(visit.click_id if visit else None)

        background_tasks.add_task(after)
        return {"ok": True}

    @app.post("/signup-sync")
    @track_registration
    def signup_sync() -> dict[str, bool]:
        identify(email="sync@example.com")
        return {"ok": True}

    @app.post("/signup-fails")
    @track_registration
    async def signup_fails() -> None:
        identify(email="nobody@example.com")
        raise HTTPException(status_code=409, detail="taken")

    @app.post("/signup-redirect")
    @track_registration
    async def signup_redirect(email: str) -> RedirectResponse:  # a query parameter
        return RedirectResponse("/welcome", status_code=303)

    @app.post("/checkout")
    @track_payment
    async def checkout(amount: str) -> PlainTextResponse:
        identify(email="payer@example.com")
        set_lead_value(amount)
        return PlainTextResponse("paid")

    @app.post("/checkout-declined")
    @track_payment(value="10.00")
    async def checkout_declined() -> PlainTextResponse:
        return PlainTextResponse("declined", status_code=402)

    @app.post("/checkout-fixed")
    @track_payment(value="12.50")
    async def checkout_fixed() -> dict[str, bool]:
        return {"ok": True}

    return app


def journey(app: Any, *steps: tuple[str, str, dict[str, Any]]) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        async with client_for(app) as client:
            responses = [await client.get("/?ref=aff_api", headers=UA)]
            for method, url, kwargs in steps:
                responses.append(await client.request(method, url, headers=UA, **kwargs))
            return responses

    return asyncio.run(go())


def test_add_middleware_dependency_and_state(events: list[Event]) -> None:
    landing, again, sync = journey(make_api(), ("GET", "/", {}), ("GET", "/sync", {}))
    assert landing.json() == {"ref": "aff_api", "same": True}
    assert len(landing.headers.get_list("set-cookie")) == 3
    assert again.json() == {"ref": "aff_api", "same": True}
    assert sync.json() == {"ref": "aff_api", "same": True}
    assert [e.kind for e in events] == ["click"]


def test_no_visit_without_attribution(events: list[Event]) -> None:
    async def go() -> httpx.Response:
        async with client_for(make_api()) as client:
            return await client.get("/", headers=UA)

    assert asyncio.run(go()).json() == {"ref": None, "same": True}
    assert events == []


def test_registration_fields_from_a_pydantic_body(events: list[Event]) -> None:
    body = {"email": "Body@Example.com", "full_name": "Body User"}
    _, created = journey(make_api(), ("POST", "/signup", {"json": body}))
    assert created.status_code == 201
    click, registration = events
    assert registration.body == {
        "clickId": click.body["clickId"],
        "email": "Body@Example.com",
        "customerName": "Body User",
    }


def test_identify_background_task_and_sync_endpoint(events: list[Event]) -> None:
    app = make_api()
    journey(app, ("POST", "/signup-identified", {}), ("POST", "/signup-sync", {}))
    click, first, second = events
    assert first.body == {
        "clickId": click.body["clickId"],
        "email": "ann@example.com",
        "customerId": "7",
        "customerName": "Ann",
    }
    assert second.body == {"clickId": click.body["clickId"], "email": "sync@example.com"}
    assert app.state.background == [click.body["clickId"]]


def test_failures_report_nothing(events: list[Event]) -> None:
    _, conflict, declined = journey(
        make_api(), ("POST", "/signup-fails", {}), ("POST", "/checkout-declined", {})
    )
    assert conflict.status_code == 409 and declined.status_code == 402
    assert [e.kind for e in events] == ["click"]


def test_redirect_and_payments(events: list[Event]) -> None:
    _, redirected, paid, fixed = journey(
        make_api(),
        ("POST", "/signup-redirect", {"params": {"email": "q@example.com"}}),
        ("POST", "/checkout", {"params": {"amount": "49.90"}}),
        ("POST", "/checkout-fixed", {}),
    )
    assert (redirected.status_code, paid.text, fixed.status_code) == (303, "paid", 200)
    click, registration, payment, payment_fixed = events
    assert registration.body["email"] == "q@example.com"  # FastAPI's keyword arguments
    assert payment.body["leadValue"] == Decimal("49.90")
    assert payment.body["customerEmail"] == "payer@example.com"
    assert payment.body["sessionId"] == click.body["sessionId"]
    assert payment_fixed.body["leadValue"] == Decimal("12.50")


def test_unreferred_visitor_reports_nothing(events: list[Event]) -> None:
    async def go() -> None:
        async with client_for(make_api()) as client:
            await client.post("/signup", json={"email": "a@b.c", "full_name": "A"}, headers=UA)
            await client.post("/checkout", params={"amount": "5"}, headers=UA)

    asyncio.run(go())
    assert events == []


# -- plain Starlette ---------------------------------------------------------------------------


def make_starlette(log: list[str]) -> Starlette:
    @track_registration
    async def signup(request: Request) -> JSONResponse:
        data = await request.json()  # parsed by the view; the decorator reads the cache
        return JSONResponse({"ok": bool(data)}, status_code=201)

    @track_payment
    async def pay(request: Request) -> PlainTextResponse:
        set_lead_value("19.00")
        return PlainTextResponse("paid")

    async def index(request: Request) -> PlainTextResponse:
        visit = request.state.affy_visit
        return PlainTextResponse(visit.affiliate_reference if visit else "-")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.append("startup")
        yield
        log.append("shutdown")

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/signup", signup, methods=["POST"]),
            Route("/pay", pay, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(AffyASGIMiddleware, settings=SETTINGS)
    return app


def test_starlette_endpoints_and_json_fields(events: list[Event]) -> None:
    app = make_starlette([])
    landing, created, paid = journey(
        app,
        ("POST", "/signup", {"json": {"email": "s@example.com", "name": "Star"}}),
        ("POST", "/pay", {}),
    )
    assert landing.text == "aff_api" and created.status_code == 201 and paid.text == "paid"
    click, registration, payment = events
    assert registration.body == {
        "clickId": click.body["clickId"],
        "email": "s@example.com",
        "customerName": "Star",
    }
    assert payment.body["leadValue"] == Decimal("19.00")


def test_starlette_lifespan_runs_and_the_queue_is_flushed(sandbox: SandboxServer) -> None:
    from tests.middleware.test_asgi import drive_lifespan

    log: list[str] = []
    app = make_starlette(log)
    app.user_middleware.clear()
    app.add_middleware(AffyASGIMiddleware, settings=sandbox.settings(flush_timeout=4))
    sandbox.set_faults(latency=0.3)

    async def landing() -> None:
        async with client_for(app) as client:
            assert (await client.get("/?ref=star", headers=UA)).text == "star"

    sent = asyncio.run(drive_lifespan(app, landing))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert log == ["startup", "shutdown"]
    assert [e["affiliate_reference"] for e in sandbox.events("click")] == ["star"]


# -- the example shop ---------------------------------------------------------------------------


def shop_journey(app: Any) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        async with client_for(app) as client:
            out = [await client.get("/?ref=aff_demo&utm_source=blog", headers=UA)]
            out.append(await client.get("/pricing", headers=UA))
            out.append(await client.get("/signup?plan=team", headers=UA))
            out.append(await client.post("/signup", data={"plan": "team", "email": "nope"}))
            out.append(
                await client.post(
                    "/signup",
                    data={"plan": "team", "email": "Ann@Example.com", "name": "Ann"},
                    headers=UA,
                )
            )
            out.append(await client.post("/checkout", data={"card": "12"}, headers=UA))
            out.append(
                await client.post("/checkout", data={"card": "4242 4242 4242 4242"}, headers=UA)
            )
            out.append(await client.get("/thanks", headers=UA))
            return out

    return asyncio.run(go())


def test_shop_flow_in_process(events: list[Event]) -> None:
    landing, pricing, form, bad, ok, declined, paid, thanks = shop_journey(
        create_app(Settings(client_id=1, api_url="http://127.0.0.1:9"))
    )
    assert landing.status_code == 200 and "Referred by aff_demo" in pricing.text
    assert form.status_code == 200 and 'value="team"' in form.text
    assert bad.status_code == 400
    assert ok.status_code == 303 and ok.headers["location"] == "/checkout"
    assert "shop_session" in ok.cookies  # the shop's own cookie, next to ours
    assert declined.status_code == 402 and paid.status_code == 303
    assert "Thank you, Ann" in thanks.text
    click, registration, payment = events
    assert registration.body == {
        "clickId": click.body["clickId"],
        "email": "ann@example.com",
        "customerId": "1",
        "customerName": "Ann",
    }
    assert payment.body["sessionId"] == click.body["sessionId"]
    assert payment.body["leadValue"] == Decimal("99.00")


def test_shop_against_the_sandbox(sandbox: SandboxServer) -> None:
    config = {"AFFY_API_URL": sandbox.url, "AFFY_CLIENT_ID": 1, "AFFY_API_KEY": "test-key"}
    app = create_app(config)
    shop_journey(app)

    async def flush() -> httpx.Response:
        async with client_for(app) as client:
            return await client.post("/_affy/flush")

    # The endpoint flushes every queue of the process (other tests' too); ours first.
    assert isinstance(asyncio.run(flush()).json()["delivered"], bool)
    assert delivery.backend_for(Settings.from_mapping(config)).flush(10)
    kinds = [(e["kind"], e["affiliate_reference"]) for e in sandbox.events()]
    assert kinds == [("click", "aff_demo"), ("registration", "aff_demo"), ("payment", "aff_demo")]
    assert sandbox.events("payment")[0]["body"]["leadValue"] == Decimal("99.00")


def test_shop_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from affy_middleware import AffyConfigError

    monkeypatch.setenv("AFFY_CLIENT_ID", "not-a-number")
    with pytest.raises(AffyConfigError):
        create_app()  # at start-up, not on the first request


def test_form_fields_without_identify(events: list[Event]) -> None:
    """Fields the endpoint (or FastAPI) already parsed: a Starlette form, FastAPI Form()."""
    from fastapi import Form

    app = FastAPI()
    app.add_middleware(AffyASGIMiddleware, settings=SETTINGS)

    @app.post("/starlette-form")
    @track_registration
    async def starlette_form(request: Request) -> dict[str, int]:
        form = await request.form()
        return {"fields": len(form)}

    @app.post("/fastapi-form")
    @track_registration
    async def fastapi_form(
        email: str = Form(...), first_name: str = Form(""), last_name: str = Form("")
    ) -> dict[str, bool]:
        return {"ok": True}

    _, first, second = journey(
        app,
        ("POST", "/starlette-form", {"data": {"email": "f@example.com", "full_name": "F"}}),
        ("POST", "/fastapi-form", {"data": {"email": "g@example.com", "first_name": "G"}}),
    )
    assert first.json() == {"fields": 2} and second.json() == {"ok": True}
    click, one, two = events
    assert one.body == {
        "clickId": click.body["clickId"],
        "email": "f@example.com",
        "customerName": "F",
    }
    assert two.body == {
        "clickId": click.body["clickId"],
        "email": "g@example.com",
        "customerName": "G",
    }
