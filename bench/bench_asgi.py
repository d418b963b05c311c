"""What AffyASGIMiddleware and the decorators add per request, in one run.

    .venv/bin/python bench/bench_asgi.py [--quick]

Every scenario awaits an ASGI app directly (no server, no socket) with a copy of a prebuilt
scope, inside one event loop, in a tight loop. The added cost of a variant is its time
minus the bare app's time in the same run (min over interleaved repeats), shown as a share
of a Starlette hello-world request measured the same way (Starlette's time minus the bare
app's). Last, with the sandbox answering after 2 s, a decorated FastAPI signup endpoint is
timed against an undecorated one over real HTTP (uvicorn in a thread): the request only
enqueues.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import platform
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _timing import (  # noqa: E402
    CHROME,
    OTHER_COOKIES,
    affy_down,
    signup_summary,
    signup_times,
    us,
)
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from affy_middleware import (  # noqa: E402
    AffyASGIMiddleware,
    Settings,
    delivery,
    identify,
    track_registration,
)
from affy_middleware.sandbox import SandboxServer  # noqa: E402

Scope = dict[str, Any]
App = Callable[[Scope, Any, Any], Awaitable[None]]
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
}
BODY = {"type": "http.response.body", "body": b"ok"}
REQUEST = {"type": "http.request", "body": b"", "more_body": False}


async def receive() -> dict[str, Any]:
    return REQUEST


async def send(message: Any) -> None:
    pass


async def bare(scope: Scope, receive: Any, send: Any) -> None:
    await send(START)
    await send(BODY)


@track_registration
async def decorated_signup(scope: Scope, receive: Any, send: Any) -> None:
    identify(email="bench@example.com", customer_id="42")
    await send({**START, "status": 201})
    await send(BODY)


async def bare_signup(scope: Scope, receive: Any, send: Any) -> None:
    await send({**START, "status": 201})
    await send(BODY)


def scope(path: str = "/", query: str = "", method: str = "GET", cookie: str = "") -> Scope:
    headers = [
        (b"host", b"shop.example.com"),
        (b"user-agent", CHROME.encode()),
        (b"accept", b"text/html,application/xhtml+xml"),
        (b"accept-language", b"en-GB,en;q=0.9"),
        (b"sec-fetch-mode", b"navigate"),
        (b"referer", b"https://partner.example.com/r/abc123"),
    ]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def timed(app: App, base: Scope, n: int) -> float:
    """Seconds per request for ``n`` requests (the heap frozen first, so the events that
    pile up in the queue of an unreachable AFFY are not rescanned by the GC)."""
    gc.collect()
    gc.freeze()
    copy = base.copy
    t0 = time.perf_counter()
    for _ in range(n):
        await app(copy(), receive, send)
    return (time.perf_counter() - t0) / n


async def measure(variants: dict[str, tuple[App, Scope]], n: int, repeats: int) -> dict[str, float]:
    best = {name: float("inf") for name in variants}
    for app, env in variants.values():  # warm up (routes, caches, the dispatcher)
        await timed(app, env, min(n, 200))
    for _ in range(repeats):  # interleaved, so drift hits every variant alike
        for name, (app, env) in variants.items():
            best[name] = min(best[name], await timed(app, env, n))
    return best


def starlette_hello(middleware: Settings | None = None) -> App:
    async def index(request: Request) -> PlainTextResponse:
        return PlainTextResponse("Hello, World!")

    app = Starlette(routes=[Route("/", index)])
    if middleware is not None:
        app.add_middleware(AffyASGIMiddleware, settings=middleware)
    return app


async def landing_cookie(mw: AffyASGIMiddleware) -> str:
    cookies: list[str] = []

    async def record(message: Any) -> None:
        if message["type"] == "http.response.start":
            cookies.extend(v.decode() for k, v in message["headers"] if k == b"set-cookie")

    with delivery.capture():
        await mw(scope("/", query="ref=aff_demo"), receive, record)
    return "; ".join(c.split(";", 1)[0] for c in cookies)


async def overhead(n: int, repeats: int) -> list[str]:
    settings = affy_down()
    ours = AffyASGIMiddleware(bare, settings=settings)
    ours_signup = AffyASGIMiddleware(decorated_signup, settings=settings)
    cookie = await landing_cookie(ours)
    plain = scope("/", cookie=OTHER_COOKIES)
    returning = scope("/pricing", cookie=f"{OTHER_COOKIES}; {cookie}")
    landing = scope("/", query="ref=aff_demo&utm_source=newsletter", cookie=OTHER_COOKIES)
    signup = scope("/signup", method="POST", cookie=f"{OTHER_COOKIES}; {cookie}")
    variants: dict[str, tuple[App, Scope]] = {
        "bare": (bare, plain),
        "starlette hello world": (starlette_hello(), scope("/", cookie=OTHER_COOKIES)),
        "starlette + ours, pass-through": (
            starlette_hello(settings),
            scope("/", cookie=OTHER_COOKIES),
        ),
        "ours pass-through": (ours, plain),
        "ours returning visitor": (ours, returning),
        "ours affiliate landing": (ours, landing),
        "ours decorated signup": (ours_signup, signup),
        "bare signup": (bare_signup, signup),
    }
    t = await measure(variants, n, repeats)
    star = t["starlette hello world"] - t["bare"]
    rows = [
        f"Starlette hello world: {us(t['starlette hello world'])} per request "
        f"(bare ASGI app: {us(t['bare'])}; Starlette's own share: {us(star)})",
        "",
        "| scenario | added per request | share of a Starlette hello world | budget |",
        "|---|---|---|---|",
    ]
    for name, base, budget in [
        ("ours pass-through", "bare", "≤ 2 %"),
        ("ours returning visitor", "bare", ""),
        ("ours affiliate landing", "bare", "≤ 10 %"),
        ("ours decorated signup", "bare signup", ""),
        ("starlette + ours, pass-through", "starlette hello world", ""),
    ]:
        added = max(t[name] - t[base], 0.0)
        rows.append(f"| {name} | {us(added)} | {added / star * 100:5.2f} % | {budget} |")
    rows.append("")
    stats = delivery.backend_for(settings).stats()
    rows.append(f"(dispatcher stats after the run: {dict(stats)})")
    delivery.backend_for(settings).close(0.1)
    return rows


async def disturbed(n: int, rounds: int) -> list[str]:
    """The in-process landing again, timed request by request, back to back and then with
    what a server does between two requests in the way: socket system calls (3 round
    trips over a socketpair), a Starlette hello world, and 2 MB of memory traffic. Only
    the landing itself is timed, so the difference is what cold caches cost it."""
    import select
    import socket

    settings = affy_down()
    ours = AffyASGIMiddleware(bare, settings=settings)
    hello = starlette_hello()
    landing = scope("/", query="ref=aff_demo&utm_source=newsletter", cookie=OTHER_COOKIES)
    plain = scope("/", cookie=OTHER_COOKIES)
    left, right = socket.socketpair()
    junk = bytearray(2_000_000)

    async def between() -> None:
        for _ in range(3):
            left.send(b"x" * 600)
            select.select([right], [], [], 0)
            right.recv(4096)
        await hello(plain.copy(), receive, send)
        for i in range(0, len(junk), 64):
            junk[i] = 1

    async def run(app: App, base: Scope, disturb: bool) -> float:
        gc.collect()
        gc.freeze()
        total = 0
        for _ in range(n):
            if disturb:
                await between()
            t0 = time.perf_counter_ns()
            await app(base.copy(), receive, send)
            total += time.perf_counter_ns() - t0
        return total / n / 1e9

    added: dict[bool, float] = {}
    try:
        for disturb in (False, True):
            best = {"bare": float("inf"), "landing": float("inf")}
            for _ in range(rounds):
                best["bare"] = min(best["bare"], await run(bare, plain, disturb))
                best["landing"] = min(best["landing"], await run(ours, landing, disturb))
            added[disturb] = best["landing"] - best["bare"]
    finally:
        left.close()
        right.close()
        delivery.backend_for(settings).close(0.1)
    return [
        f"In-process affiliate landing, timed alone, best of {rounds} x {n}: "
        f"back to back {us(added[False])}; with a served request's other work between "
        f"landings (3 socket round trips, a Starlette hello world, 2 MB touched) "
        f"{us(added[True])} (x{added[True] / added[False]:.2f})",
    ]


def slow_affy(requests: int) -> list[str]:
    """Decorated vs undecorated FastAPI signup over real HTTP while AFFY takes 2 s a call."""
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse as FastText

    with SandboxServer(port=0, api_key="bench-key", latency=2.0) as sandbox:
        settings = sandbox.settings(flush_timeout=0.1)
        app = FastAPI()
        app.add_middleware(AffyASGIMiddleware, settings=settings, flush_on_shutdown=False)

        @app.api_route("/plain", methods=["GET", "POST"])
        async def plain() -> FastText:
            return FastText("ok", 201)

        @app.post("/decorated")
        @track_registration
        async def decorated() -> FastText:
            identify(email="slow@example.com")
            return FastText("ok", 201)

        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started, "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            times = signup_times(port, requests)
        finally:
            server.should_exit = True
            thread.join(10)
        queued = delivery.backend_for(settings).stats()
        delivery.backend_for(settings).close(0.1)
        return [
            f"Sandbox latency 2 s, {requests} requests each over keep-alive HTTP (uvicorn):",
            signup_summary(times),
            f"(dispatcher stats: {dict(queued)})",
        ]


SERVED_APP = """
import time
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from affy_middleware import AffyASGIMiddleware, Settings

async def index(request):
    return PlainTextResponse("Hello, World!")

COOKIES = [
    "affy_click_id=ZqEMKf9nHjmOakWzDBHzWsRO; Path=/; Max-Age=2592000; SameSite=Lax",
    "affy_session_id=W4qL0f3mxyCJ8iVakVIx0zNS; Path=/; Max-Age=2592000; SameSite=Lax",
    "affy_click_id_at=1795494541.6afa2849.raff_demo; Path=/; Max-Age=2592000; SameSite=Lax;"
    " HttpOnly",
]

async def with_cookies(request):  # the same response, with three cookies of its own
    response = PlainTextResponse("Hello, World!")
    for value in COOKIES:
        response.raw_headers.append((b"set-cookie", value.encode()))
    return response

async def cpu(request):  # CPU time of the event loop's thread, in ns
    return PlainTextResponse(str(time.thread_time_ns()))

def hello():
    return Starlette(
        routes=[Route("/", index), Route("/cookies", with_cookies), Route("/_cpu", cpu)]
    )

plain, ours = hello(), hello()
# AFFY unreachable and a small queue: once it is full, clicks are dropped (counted), so
# the server's heap stays the same size during the run.
settings = Settings(client_id=1, api_url="http://127.0.0.1:9", queue_size=1000,
                    flush_timeout=0.1)
ours.add_middleware(AffyASGIMiddleware, settings=settings, flush_on_shutdown=False)
apps = {"/plain": plain, "/ours": ours}

async def app(scope, receive, send):
    # One process serves both, /plain/... and /ours/..., so they share everything else.
    prefix = scope["path"][:5] if scope["path"].startswith("/ours") else scope["path"][:6]
    scope["path"] = scope["path"][len(prefix):] or "/"
    scope["raw_path"] = scope["raw_path"][len(prefix):] or b"/"
    await apps[prefix](scope, receive, send)

uvicorn.run(app, host="127.0.0.1", port=0, access_log=False, lifespan="off")
"""


def served(n: int, rounds: int) -> list[str]:
    """Server-side CPU per request (the event loop thread's CPU time, read by the app
    itself) of a Starlette hello world under uvicorn, with and without the middleware:
    both apps in one server process, requests interleaved."""
    import os
    import re
    import subprocess

    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root, "PYTHONUNBUFFERED": "1"}
    headers = {
        "User-Agent": CHROME,
        "Accept": "text/html",
        "Sec-Fetch-Mode": "navigate",
        "Referer": "https://partner.example.com/r/abc123",
        "Cookie": OTHER_COOKIES,
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVED_APP],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = None
        for _ in range(50):  # a few start-up lines, then the address
            found = re.search(r"running on http://127\.0\.0\.1:(\d+)", proc.stdout.readline())
            if found:
                port = int(found.group(1))
                break
        assert port is not None, "uvicorn did not start"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

        def get(path: str) -> bytes:
            conn.request("GET", path, headers=headers)
            return conn.getresponse().read()

        def batch(path: str, count: int) -> float:
            start = int(get("/plain/_cpu"))
            for _ in range(count):
                get(path)
            return (int(get("/plain/_cpu")) - start) / count / 1e9

        landing = "/?ref=aff_demo&utm_source=newsletter"
        variants = {
            "starlette, plain URL": "/plain/",
            "starlette, landing URL": "/plain" + landing,
            "starlette, 3 cookies of its own": "/plain/cookies",
            "ours, pass-through": "/ours/",
            "ours, affiliate landing": "/ours" + landing,
        }
        for path in variants.values():  # warm up
            batch(path, min(n, 500))
        best = {name: float("inf") for name in variants}
        for _ in range(rounds):
            for name, path in variants.items():
                best[name] = min(best[name], batch(path, n))
        conn.close()
    finally:
        proc.terminate()
        proc.wait(10)
    base = best["starlette, plain URL"]
    rows = [
        "Served by uvicorn (h11, one keep-alive client; both apps in one process): "
        f"event-loop CPU per request, best of {rounds} x {n}",
        f"Starlette hello world: {us(base)} per request "
        f"(landing URL, no middleware: {us(best['starlette, landing URL'])})",
        "",
        "| scenario | loop CPU per request | added | share of a served Starlette hello world |",
        "|---|---|---|---|",
    ]
    for name, reference, label in [
        ("ours, pass-through", "starlette, plain URL", "pass-through"),
        ("ours, affiliate landing", "starlette, landing URL", "affiliate landing"),
        (
            "starlette, 3 cookies of its own",
            "starlette, plain URL",
            "(control: no middleware, the app sets 3 cookies of the same size)",
        ),
    ]:
        added = best[name] - best[reference]
        rows.append(f"| {label} | {us(best[name])} | {us(added)} | {added / base * 100:5.2f} % |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    parser.add_argument(
        "--served-only", action="store_true", help="only the uvicorn-served comparison"
    )
    args = parser.parse_args()
    n, repeats, slow = (2_000, 3, 20) if args.quick else (20_000, 7, 100)
    served_n, served_rounds = (500, 2) if args.quick else (4_000, 5)
    print(
        f"# bench_asgi: Python {platform.python_version()} on {platform.machine()}, "
        f"{n} requests x {repeats} repeats per variant"
    )
    if not args.served_only:
        for line in asyncio.run(overhead(n, repeats)):
            print(line)
        print()
    for line in served(served_n, served_rounds):
        print(line)
    print()
    for line in asyncio.run(disturbed(*((1_000, 2) if args.quick else (3_000, 3)))):
        print(line)
    if args.served_only:
        return
    print()
    for line in slow_affy(slow):
        print(line)


if __name__ == "__main__":
    main()
