"""End to end in a real browser: affiliate link -> pricing -> signup -> payment -> dashboard.

Drives Debian's chromium through Playwright against the example shop on a real server and
the sandbox AFFY. Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from werkzeug.serving import make_server

from affy_middleware import delivery
from affy_middleware._wire import API_PATHS
from affy_middleware.sandbox import SandboxServer
from examples.flask_shop import create_app

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "browser"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

pytestmark = pytest.mark.browser

if not os.path.exists(CHROMIUM):
    if os.environ.get("CI", "").lower() == "true":
        raise RuntimeError(f"CI=true but {CHROMIUM} is missing: apt-get install chromium")
    pytest.skip(
        f"{CHROMIUM} not found (apt-get install chromium); the browser test runs in CI",
        allow_module_level=True,
    )


@pytest.fixture
def shop(sandbox: SandboxServer) -> Iterator[tuple[str, Any]]:
    app = create_app(
        {"AFFY_API_URL": sandbox.url, "AFFY_CLIENT_ID": 1, "AFFY_API_KEY": sandbox.api_key}
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", app
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def browser_context() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="affy-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1100, "height": 760},
            )
            context.set_default_timeout(20_000)
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_affiliate_visitor_signs_up_and_pays(
    sandbox: SandboxServer, shop: tuple[str, Any], browser_context: Any
) -> None:
    url, app = shop
    page = browser_context.new_page()
    page.goto(f"{url}/?ref=aff_demo&utm_source=browser-test")
    page.screenshot(path=str(ARTIFACTS / "1-landing.png"))
    cookies = {c["name"]: c for c in browser_context.cookies(url)}
    assert set(cookies) >= {"affy_click_id", "affy_session_id", "affy_click_id_at"}
    assert cookies["affy_click_id_at"]["httpOnly"] and not cookies["affy_click_id"]["httpOnly"]
    assert cookies["affy_click_id"]["sameSite"] == "Lax" and cookies["affy_click_id"]["expires"] > 0
    # AFFY's snippet must still be able to read the click id from script.
    click_id = cookies["affy_click_id"]["value"]
    assert f"affy_click_id={click_id}" in page.evaluate("document.cookie")
    assert "affy_click_id_at" not in page.evaluate("document.cookie")

    page.click("#see-pricing")
    page.wait_for_url(f"{url}/pricing")
    page.screenshot(path=str(ARTIFACTS / "2-pricing.png"))
    assert page.inner_text("#referral") == "Referred by aff_demo"
    page.click("#choose-pro")
    page.fill("#name", "Browser Buyer")
    page.fill("#email", "buyer@example.com")
    page.screenshot(path=str(ARTIFACTS / "3-signup.png"))
    page.click("#signup-submit")
    page.wait_for_url(f"{url}/checkout")
    page.fill("#card", "4242 4242 4242 4242")
    page.screenshot(path=str(ARTIFACTS / "4-checkout.png"))
    page.click("#pay")
    page.wait_for_selector("#thanks")
    page.screenshot(path=str(ARTIFACTS / "5-thanks.png"))

    assert delivery.backend_for(app.extensions["affy"].settings).flush(15)
    events = sandbox.events()
    assert [e["kind"] for e in events] == ["click", "registration", "payment"]
    click, registration, payment = events
    session_id = cookies["affy_session_id"]["value"]
    assert click["body"]["clickId"] == click_id and click["body"]["sessionId"] == session_id
    assert click["body"]["source"] == "browser-test"
    assert "HeadlessChrome" in click["body"]["userAgent"]
    assert registration["body"]["clickId"] == click_id
    assert registration["body"]["email"] == "buyer@example.com"
    assert payment["body"]["sessionId"] == session_id
    assert payment["body"]["leadValue"] == Decimal("49.00")
    assert {e["affiliate_reference"] for e in events} == {"aff_demo"}

    page.goto(sandbox.url + "/")
    page.screenshot(path=str(ARTIFACTS / "6-dashboard.png"), full_page=True)
    row = page.locator('#affiliates tr[data-affiliate="aff_demo"]')
    counts = [c.strip() for c in row.locator(".count").all_inner_texts()]
    assert counts == ["1", "1", "1"]  # the three events recorded above
    assert row.locator("td.client").inner_text() == "1"
    assert row.locator("td.click-to-registration").inner_text() == "100.0%"
    assert row.locator("td.registration-to-payment").inner_text() == "100.0%"
    assert row.locator("td.revenue").inner_text() == "49.00"
    assert page.locator("#events").inner_text().count("aff_demo") >= 3


def _record(http: Any, affiliate: str, visits: int, signups: int, payers: int) -> None:
    """Clicks, registrations by click and payments by session straight to the sandbox."""
    for i in range(visits):
        session = f"{affiliate}-s{i}"
        click = {"clientId": 7, "affiliateReference": affiliate, "clickId": f"{affiliate}-c{i}"}
        assert http.post(API_PATHS["click"], json={**click, "sessionId": session}).is_success
        if i < signups:
            registration = {"clickId": f"{affiliate}-c{i}", "email": f"u{i}@example.com"}
            assert http.post(API_PATHS["registration"], json=registration).is_success
        if i < payers:
            pay = {"clientId": 7, "leadType": "PAYMENT", "leadValue": 20, "sessionId": session}
            assert http.post(API_PATHS["payment"], json=pay).is_success


def test_the_dashboard_funnel_refresh_and_reset(
    sandbox: SandboxServer, browser_context: Any
) -> None:
    """Several affiliates' funnels drawn from the recorded events; a refresh while the
    reader has scrolled keeps their place; the reset button empties the sandbox."""
    funnels = {"alpha": (10, 5, 2), "beta": (8, 2, 1), "gamma": (4, 4, 4)}
    with httpx.Client(base_url=sandbox.url, timeout=10) as http:
        for affiliate, (visits, signups, payers) in funnels.items():
            _record(http, affiliate, visits, signups, payers)
        organic = {"clientId": 7, "leadType": "PAYMENT", "leadValue": 5, "sessionId": "organic"}
        assert http.post(API_PATHS["payment"], json=organic).is_success
        page = browser_context.new_page()
        page.set_viewport_size({"width": 1100, "height": 500})
        page.goto(sandbox.url + "/")
        page.screenshot(path=str(ARTIFACTS / "8-dashboard-funnel.png"), full_page=True)
        recorded = sandbox.events()
        for affiliate in funnels:
            row = page.locator(f'#affiliates tr[data-affiliate="{affiliate}"]')
            shown = [int(c) for c in row.locator(".count").all_inner_texts()]
            mine = [e["kind"] for e in recorded if e["affiliate_reference"] == affiliate]
            assert shown == [mine.count(k) for k in ("click", "registration", "payment")]
        assert page.locator("#unattributed").inner_text() == "1"
        assert page.locator('a[href="/_sandbox/events"]').count() == 1

        page.mouse.wheel(0, 400)
        page.wait_for_function("window.scrollY > 100")
        scrolled = page.evaluate("window.scrollY")
        _record(http, "delta", 3, 1, 0)  # new events while the reader looks
        page.wait_for_selector('#affiliates tr[data-affiliate="delta"]', timeout=15_000)
        assert page.evaluate("window.scrollY") == scrolled

        page.on("dialog", lambda dialog: dialog.accept())
        page.click("#reset")
        page.wait_for_function("document.getElementById('total-events').textContent === '0'")
        assert sandbox.events() == []
        page.screenshot(path=str(ARTIFACTS / "9-dashboard-reset.png"))


def test_snippet_cookie_is_reissued_by_the_server(
    shop: tuple[str, Any], browser_context: Any
) -> None:
    url, _ = shop
    page = browser_context.new_page()
    page.goto(f"{url}/pricing")
    assert browser_context.cookies(url) == []  # no referral, no cookie
    snippet_id = "3f2b8c1e-5d7a-4c2e-9b1f-0a6d8e4c2b7a"
    # What AFFY's snippet does: a script-written cookie (Safari caps these at 7 days).
    page.evaluate(f"document.cookie = 'affy_click_id={snippet_id}; path=/; max-age=604800'")
    page.goto(f"{url}/")
    cookies = {c["name"]: c for c in browser_context.cookies(url)}
    assert cookies["affy_click_id"]["value"] == snippet_id  # value untouched
    assert cookies["affy_click_id_at"]["httpOnly"]
    reissued_expiry = cookies["affy_click_id"]["expires"]
    assert reissued_expiry > time.time() + 29 * 86400  # the server's Max-Age, not 7 days
    page.goto(f"{url}/pricing")
    after = {c["name"]: c for c in browser_context.cookies(url)}
    assert after["affy_click_id"]["expires"] == reissued_expiry  # never extended again
    assert after["affy_click_id_at"]["value"] == cookies["affy_click_id_at"]["value"]
    page.screenshot(path=str(ARTIFACTS / "7-reissued.png"))
