"""``make demo``: a visitor from an affiliate link to a payment, over real HTTP.

Starts the sandbox AFFY and Tiny Shop (``examples/flask_shop``) on 127.0.0.1, then walks
one visitor through the shop the way a browser would (a cookie jar, redirects, forms):
the affiliate link ``/?ref=aff_demo``, the pricing page, the signup form and the checkout.
It flushes delivery, prints the attribution the sandbox recorded, and exits 0 only when
the click, the registration and the payment are all attributed to the affiliate.

``make serve`` (``--serve``) then keeps the shop and the sandbox running until Ctrl-C, so
you can open them in a browser.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python examples/demo.py` from a clone, installed or not
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server  # noqa: E402

import affy_middleware  # noqa: E402
from affy_middleware import AffyClient, AffyError, Settings  # noqa: E402
from affy_middleware.sandbox import SandboxServer  # noqa: E402
from examples.flask_shop import PLANS, create_app  # noqa: E402

AFFILIATE = "aff_demo"
#: The query parameter the affiliate link lands with (one of AFFY_REF_PARAMS' defaults).
REF_PARAM = "ref"
CLIENT_ID = 1
API_KEY = "demo-key"
PLAN = "pro"
CUSTOMER = {"name": "Ada Lovelace", "email": "ada@example.com"}
CARD = "4242 4242 4242 4242"
#: A browser's headers: the middleware counts only real page loads, not bots or fetches.
BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36",
    "Accept": "text/html,application/xhtml+xml",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
}
STEPS = 6


class DemoFailed(Exception):
    """Something the demo expected did not happen; the message says what."""


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def _out(text: str = "") -> None:
    print(text, flush=True)


def _step(number: int, text: str) -> None:
    _out(f"[{number}/{STEPS}] {text}")


# -- servers ------------------------------------------------------------------------------


def _free(port: int) -> int:
    """``port`` if nothing listens on it, else 0 (any free port).

    Checked first because werkzeug answers a taken port with a message and ``SystemExit``.
    """
    if port == 0:
        return 0
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


def start_sandbox(port: int) -> SandboxServer:
    """The sandbox on ``port`` if it is free, else on any free port."""
    return SandboxServer(port=_free(port), api_key=API_KEY).start()


def shop_settings(sandbox: SandboxServer) -> Settings:
    """The shop's AFFY settings: the sandbox, and every other option at its default.

    Built from keywords only, so ``AFFY_*`` variables in your shell (a production spool
    path, a cookie domain, ``AFFY_ENABLED=0``) cannot change or spoil the demo.
    """
    return Settings(api_url=sandbox.url, client_id=CLIENT_ID, api_key=API_KEY)


class ShopServer:
    """Tiny Shop on a werkzeug server in a thread, pointed at the sandbox."""

    def __init__(self, sandbox: SandboxServer, port: int) -> None:
        self.app = create_app(shop_settings(sandbox))
        self.server: BaseWSGIServer = make_server(
            "127.0.0.1", _free(port), self.app, threaded=True, request_handler=_Quiet
        )
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="tiny-shop", daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


# -- the walk -----------------------------------------------------------------------------


def _expect(response: httpx.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise DemoFailed(
            f"{what}: expected HTTP {status}, got {response.status_code} "
            f"({response.text.strip()[:200]!r})"
        )


def _location(response: httpx.Response) -> str:
    return str(response.headers.get("location", "?"))


def walk(shop_url: str) -> dict[str, str]:
    """One visitor through the shop; returns the attribution cookies it was given."""
    with httpx.Client(base_url=shop_url, headers=BROWSER, timeout=10.0) as browser:
        landing = f"/?{REF_PARAM}={AFFILIATE}&utm_source=newsletter"
        response = browser.get(landing)
        _expect(response, 200, f"GET {landing}")
        jar = {c.name: c for c in browser.cookies.jar}
        if "affy_click_id" not in jar or "affy_session_id" not in jar:
            raise DemoFailed(
                f"GET {landing} set no attribution cookies (got: {sorted(jar) or 'none'}); "
                f"is {REF_PARAM!r} one of the shop's AFFY_REF_PARAMS, and tracking active?"
            )
        shown = []
        for name in sorted(jar):
            cookie = jar[name]
            flags = " (HttpOnly)" if cookie.has_nonstandard_attr("HttpOnly") else ""
            value = cookie.value or ""
            shown.append(f"{name}={value[:10]}...{flags}" if len(value) > 12 else name + flags)
        _step(1, f"GET {landing} -> {response.status_code}, the middleware set cookies:")
        for line in shown:
            _out(f"        {line}")

        response = browser.get("/pricing")
        _expect(response, 200, "GET /pricing")
        referred = f"Referred by {AFFILIATE}" in response.text
        _step(
            2,
            f"GET /pricing -> {response.status_code}"
            + (f' (page footer: "Referred by {AFFILIATE}")' if referred else ""),
        )

        form = {"plan": PLAN, **CUSTOMER}
        response = browser.post("/signup", data=form)
        _expect(response, 302, "POST /signup")
        _step(
            3,
            f"POST /signup ({PLANS[PLAN].name} plan, {CUSTOMER['email']}) -> "
            f"{response.status_code} {_location(response)}   @track_registration",
        )

        response = browser.post("/checkout", data={"card": CARD})
        _expect(response, 302, "POST /checkout")
        thanks = browser.get(_location(response))
        _expect(thanks, 200, "GET /thanks")
        _step(
            4,
            f"POST /checkout (card {CARD[:4]} ...) -> {response.status_code} "
            f"{_location(response)}   @track_payment (${PLANS[PLAN].price})",
        )
        return {name: cookie.value or "" for name, cookie in jar.items()}


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fmt(row: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()

    return [fmt(header), "  ".join("-" * w for w in widths), *(fmt(r) for r in rows)]


def _short(value: object, keep: int = 12) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= keep else text[:keep] + "..."


def check_attribution(sandbox: SandboxServer, session_id: str) -> list[dict[str, Any]]:
    """The sandbox's events for this visit, printed; DemoFailed unless all are attributed."""
    events = [e for e in sandbox.events() if e["session_id"] == session_id]
    rows = [
        [
            e["kind"],
            str(e["affiliate_reference"] or "-"),
            _short(e["click_id"]),
            _short(e["session_id"]),
            "" if e["lead_value"] is None else f"{Decimal(str(e['lead_value'])):.2f}",
        ]
        for e in events
    ]
    _out()
    _out("Attribution recorded by the sandbox AFFY:")
    for line in _table(rows, ["event", "affiliate", "click id", "session", "amount"]):
        _out("  " + line)
    kinds = [e["kind"] for e in events]
    registration = "registration" if "registration" in kinds else "registration_lead"
    wanted = ["click", registration, "payment"]
    if kinds != wanted:
        raise DemoFailed(f"expected the events {wanted} for this visit, got {kinds}")
    wrong = [e["kind"] for e in events if e["affiliate_reference"] != AFFILIATE]
    if wrong:
        raise DemoFailed(f"not attributed to {AFFILIATE}: {', '.join(wrong)}")
    amount = Decimal(str(events[-1]["lead_value"]))
    if amount != PLANS[PLAN].price:
        raise DemoFailed(f"payment amount {amount}, expected {PLANS[PLAN].price}")
    return events


def run(sandbox: SandboxServer, shop: ShopServer) -> str:
    """The walk, the flush and the checks; returns the visitor's session id."""
    cookies = walk(shop.url)
    session_id = cookies["affy_session_id"]
    if not affy_middleware.flush(timeout=15.0):
        raise DemoFailed(
            f"events still undelivered after 15 s: stats {dict(affy_middleware.stats())}"
        )
    sent = affy_middleware.stats().get("sent", 0)
    _step(5, f"affy_middleware.flush() -> delivered ({sent} events sent to the sandbox)")
    with AffyClient(api_url=sandbox.url, api_key=API_KEY, client_id=CLIENT_ID) as client:
        status = client.status(session_id)
    _step(
        6,
        f"AffyClient.status(session) -> hasAffiliate={status.has_affiliate}, "
        f"affiliateReference={status.affiliate_reference}",
    )
    if status.affiliate_reference != AFFILIATE:
        raise DemoFailed(f"the status call attributes the session to {status.affiliate_reference}")
    events = check_attribution(sandbox, session_id)
    total = sum(Decimal(str(e["lead_value"] or 0)) for e in events)
    _out()
    _out(
        f"OK: affiliate {AFFILIATE} gets 1 click, 1 signup and ${total:.2f} of payments "
        f"(visitor session {_short(session_id)})"
    )
    return session_id


def _urls(sandbox: SandboxServer, shop: ShopServer) -> None:
    _out(f"  Tiny Shop            {shop.url}/?{REF_PARAM}={AFFILIATE}")
    _out(f"  sandbox dashboard    {sandbox.url}/")
    _out(f"  sandbox API          {sandbox.url}  (client id {CLIENT_ID}, API key {API_KEY})")


def serve_forever() -> None:
    done = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="examples/demo.py",
        description="Walk a visitor from an affiliate link to a payment in Tiny Shop and "
        "print the attribution the sandbox AFFY recorded.",
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="afterwards keep the shop (port 5000 if free) and the sandbox (8765 if free) "
        "running until Ctrl-C",
    )
    parser.add_argument(
        "--shop-port", type=int, metavar="PORT", help="shop port (--serve: 5000, else any free)"
    )
    parser.add_argument(
        "--sandbox-port",
        type=int,
        metavar="PORT",
        help="sandbox port (--serve: 8765, else any free)",
    )
    args = parser.parse_args(argv)
    for name in ("shop_port", "sandbox_port"):
        port = getattr(args, name)
        if port is not None and not 0 <= port <= 65535:
            parser.error(f"--{name.replace('_', '-')} must be from 0 to 65535")
    sandbox_port = args.sandbox_port if args.sandbox_port is not None else 8765 if args.serve else 0
    shop_port = args.shop_port if args.shop_port is not None else 5000 if args.serve else 0
    sandbox = start_sandbox(sandbox_port)
    shop: ShopServer | None = None
    try:
        shop = ShopServer(sandbox, shop_port)
        _out("affy_middleware demo: a visitor from an affiliate link to a payment")
        _urls(sandbox, shop)
        if not args.serve:
            _out("  (these stop when the demo ends: `make serve` keeps them running)")
        ignored = sorted(k for k in os.environ if k.startswith("AFFY_"))
        if ignored:
            _out(f"  (the demo's shop ignores your {', '.join(ignored)})")
        _out()
        try:
            session_id = run(sandbox, shop)
        except (DemoFailed, AffyError, httpx.HTTPError) as exc:
            _out()
            print(f"demo FAILED: {exc}", file=sys.stderr, flush=True)
            return 1
        _out()
        if args.serve:
            _out("Serving until Ctrl-C. Open in a browser:")
            _urls(sandbox, shop)
            _out()
            _out(
                "Try it: open the shop link, choose a plan, sign up and pay (test card "
                f"{CARD}), then reload the dashboard."
            )
            env = f"AFFY_API_URL={sandbox.url} AFFY_CLIENT_ID={CLIENT_ID} AFFY_API_KEY={API_KEY}"
            _out("From another terminal:")
            _out(f"  {env} .venv/bin/affy doctor")
            _out(f"  {env} .venv/bin/affy status {session_id}")
            serve_forever()
            _out("stopped")
        else:
            _out(
                "The shop and the sandbox above have stopped. To see them in a browser: "
                "`make serve`, then open the shop link and the dashboard."
            )
        return 0
    finally:
        affy_middleware.shutdown(timeout=2.0)
        if shop is not None:
            shop.stop()
        sandbox.close()


if __name__ == "__main__":
    sys.exit(main())
