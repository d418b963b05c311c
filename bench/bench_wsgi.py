"""What AffyMiddleware and the decorators add per request, in one run.

    .venv/bin/python bench/bench_wsgi.py [--quick]

Every scenario calls a WSGI app directly (no server, no socket) with a copy of a prebuilt
environ, consumes the body and closes it, in a tight loop. The added cost of a variant is
its time minus the bare app's time in the same run (best of interleaved repeats, with the
median and spread of the per-repeat differences), and is shown as a share of a Flask
hello-world request measured the same way. Diagnostic rows repeat the landing with the
cyclic GC off, and the landing and signup with events captured in a list instead of
queued (the difference is the dispatcher's enqueue). OpenTelemetry's
WSGI middleware (SDK tracer provider, no exporter) wraps the same bare app for comparison.
Last, with the sandbox answering after 2 s, a decorated Flask signup view is timed against
the undecorated one over real HTTP: the request only enqueues.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterable
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
from flask import Flask  # noqa: E402
from werkzeug.serving import WSGIRequestHandler, make_server  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402

from affy_middleware import (  # noqa: E402
    AffyMiddleware,
    delivery,
    identify,
    track_registration,
)
from affy_middleware.sandbox import SandboxServer  # noqa: E402

App = Callable[[dict[str, Any], Any], Iterable[bytes]]


def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return None


def bare(environ: dict[str, Any], start: Any) -> Iterable[bytes]:
    start("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


@track_registration
def decorated_signup(environ: dict[str, Any], start: Any) -> Iterable[bytes]:
    identify(email="bench@example.com", customer_id="42")
    start("201 Created", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def environ(
    path: str = "/", query: str = "", method: str = "GET", cookie: str = ""
) -> dict[str, Any]:
    headers = {
        "User-Agent": CHROME,
        "Accept": "text/html,application/xhtml+xml",
        "Accept-Language": "en-GB,en;q=0.9",
        "Sec-Fetch-Mode": "navigate",
        "Referer": "https://partner.example.com/r/abc123",
    }
    if cookie:
        headers["Cookie"] = cookie
    env: dict[str, Any] = EnvironBuilder(path=path, method=method, headers=headers).get_environ()
    env["QUERY_STRING"] = query
    return env


def timed(app: App, base: dict[str, Any], n: int) -> float:
    """Seconds per request for ``n`` requests."""
    copy = base.copy
    sr = start_response
    t0 = time.perf_counter()
    for _ in range(n):
        result = app(copy(), sr)
        for _chunk in result:
            pass
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return (time.perf_counter() - t0) / n


def measure(
    variants: dict[str, tuple[App, dict[str, Any]]], n: int, repeats: int
) -> dict[str, list[float]]:
    """Every repeat's seconds per request, per variant."""
    runs: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):  # interleaved, so drift hits every variant alike
        for name, (app, env) in variants.items():
            # Events pile up in the (paused) queue during the run; freeze them so the GC's
            # full collections don't rescan an ever-growing heap and bill it to later rows.
            gc.collect()
            gc.freeze()
            if name.endswith("(gc off)"):
                gc.disable()  # the same work, minus the cyclic GC's share
            try:
                if name.endswith("(events captured)"):
                    # The same work, but events go to a list instead of the dispatcher:
                    # the difference is the dispatcher's enqueue (diagnostic only).
                    with delivery.capture():
                        runs[name].append(timed(app, env, n))
                else:
                    runs[name].append(timed(app, env, n))
            finally:
                gc.enable()
    return runs


def otel_app(app: App) -> App:
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
    from opentelemetry.sdk.trace import TracerProvider

    return OpenTelemetryMiddleware(app, tracer_provider=TracerProvider())  # type: ignore[no-any-return]


def flask_hello() -> App:
    app = Flask("hello")

    @app.get("/")
    def index() -> str:
        return "Hello, World!"

    return app.wsgi_app  # type: ignore[return-value]


def overhead(n: int, repeats: int) -> list[str]:
    settings = affy_down()
    ours = AffyMiddleware(bare, settings=settings)
    ours_signup = AffyMiddleware(decorated_signup, settings=settings)
    otel = otel_app(bare)
    landing_cookie = "; ".join(c.split(";", 1)[0] for c in _landing_cookies(ours))
    returning = environ("/pricing", cookie=f"{OTHER_COOKIES}; {landing_cookie}")
    plain = environ("/", cookie=OTHER_COOKIES)
    landing = environ("/", query="ref=aff_demo&utm_source=newsletter", cookie=OTHER_COOKIES)
    signup = environ("/signup", method="POST", cookie=f"{OTHER_COOKIES}; {landing_cookie}")
    variants: dict[str, tuple[App, dict[str, Any]]] = {
        "bare": (bare, plain),
        "flask hello world": (flask_hello(), environ("/")),
        "ours pass-through": (ours, plain),
        "ours returning visitor": (ours, returning),
        "ours affiliate landing": (ours, landing),
        "ours affiliate landing (gc off)": (ours, landing),
        "ours affiliate landing (events captured)": (ours, landing),
        "ours decorated signup": (ours_signup, signup),
        "ours decorated signup (events captured)": (ours_signup, signup),
        "bare signup": (bare, signup),
        "otel pass-through": (otel, plain),
        "otel landing": (otel, landing),
    }
    runs = measure(variants, n, repeats)
    t = {name: min(times) for name, times in runs.items()}  # best repeat: least disturbed
    flask = t["flask hello world"] - t["bare"]
    rows = [
        f"Flask hello world: {us(t['flask hello world'])} per request "
        f"(bare WSGI app: {us(t['bare'])})",
        "",
        "| scenario | added per request (best) | share of a Flask hello world | budget "
        "| added, median of repeats (spread) |",
        "|---|---|---|---|---|",
    ]
    added: dict[str, float] = {}
    for name, base, budget in [
        ("ours pass-through", "bare", "≤ 1 %"),
        ("ours returning visitor", "bare", "≤ 2 %"),
        ("ours affiliate landing", "bare", "≤ 10 %"),
        ("ours affiliate landing (gc off)", "bare", ""),
        ("ours affiliate landing (events captured)", "bare", ""),
        ("ours decorated signup", "bare signup", "≤ 5 %"),
        ("ours decorated signup (events captured)", "bare signup", ""),
        ("otel pass-through", "bare", ""),
        ("otel landing", "bare", ""),
    ]:
        added[name] = max(t[name] - t[base], 0.0)
        # Per repeat: the variant minus its baseline of the same repeat.
        each = sorted(a - b for a, b in zip(runs[name], runs[base], strict=True))
        spread = f"{us(statistics.median(each))} ({us(each[0])} .. {us(each[-1])})"
        rows.append(
            f"| {name} | {us(added[name])} | {added[name] / flask * 100:5.2f} % | {budget} "
            f"| {spread} |"
        )
    rows.append("")
    for ours_name, otel_name, need in [
        ("ours pass-through", "otel pass-through", 20),
        ("ours affiliate landing", "otel landing", 10),
    ]:
        floor = max(added[ours_name], 1e-9)
        rows.append(
            f"OpenTelemetry adds {added[otel_name] / floor:6.1f}x what we add on "
            f"{ours_name.removeprefix('ours ')} (need ≥ {need}x)"
        )
    stats = delivery.backend_for(settings).stats()
    rows.append(f"(dispatcher stats after the run: {dict(stats)})")
    delivery.backend_for(settings).close(0.1)
    return rows


def _landing_cookies(mw: AffyMiddleware) -> list[str]:
    cookies: list[str] = []

    def sr(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        cookies.extend(v for k, v in headers if k == "Set-Cookie")

    with delivery.capture():
        list(mw(environ("/", query="ref=aff_demo"), sr))
    return cookies


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def slow_affy(requests: int) -> list[str]:
    """Decorated vs undecorated signup over real HTTP while AFFY takes 2 s per call."""
    with SandboxServer(port=0, api_key="bench-key", latency=2.0) as sandbox:
        settings = sandbox.settings(flush_timeout=0.1)
        app = Flask("slow")

        @app.route("/plain", methods=["GET", "POST"])
        def plain() -> tuple[str, int]:
            return "ok", 201

        @app.post("/decorated")
        @track_registration
        def decorated() -> tuple[str, int]:
            identify(email="slow@example.com")
            return "ok", 201

        app.wsgi_app = AffyMiddleware(app.wsgi_app, settings=settings)  # type: ignore[method-assign]
        server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            times = signup_times(server.server_port, requests)
        finally:
            server.shutdown()
            server.server_close()
            thread.join(10)
        queued = delivery.backend_for(settings).stats()
        delivery.backend_for(settings).close(0.1)
        return [
            f"Sandbox latency 2 s, {requests} requests each over keep-alive HTTP:",
            f"{signup_summary(times)} (budget: within 1 ms)",
            f"(dispatcher stats: {dict(queued)})",
        ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = parser.parse_args()
    n, repeats, slow = (2_000, 3, 20) if args.quick else (20_000, 7, 100)
    print(
        f"# bench_wsgi: Python {platform.python_version()} on {platform.machine()}, "
        f"{n} requests x {repeats} repeats per variant"
    )
    for line in overhead(n, repeats):
        print(line)
    print()
    for line in slow_affy(slow):
        print(line)


if __name__ == "__main__":
    main()
