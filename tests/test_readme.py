"""The README's quick starts run as written, and its settings table lists every variable.

A code block is executed when an HTML comment ``<!-- readme-test: NAME -->`` stands right
above it; each test below then drives the app the block built against a real sandbox.
"""

from __future__ import annotations

import re
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

import affy_middleware
from affy_middleware._settings import ENV_VARS
from affy_middleware.sandbox import SandboxServer

pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parent.parent / "README.md"
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/150.0 Safari/537.36"}


def readme_block(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(
        rf"<!-- readme-test: {re.escape(name)} -->\n```python\n(.*?)```", text, re.DOTALL
    )
    assert match, f"README has no code block marked readme-test: {name}"
    return match.group(1)


def run_block(name: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": f"readme_{name}"}
    exec(compile(readme_block(name), f"README.md[{name}]", "exec"), namespace)
    return namespace


@pytest.fixture
def affy_env(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> SandboxServer:
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AFFY_CLIENT_ID", "1")
    monkeypatch.setenv("AFFY_API_KEY", sandbox.api_key or "")
    monkeypatch.setenv("AFFY_API_URL", sandbox.url)
    return sandbox


def test_flask_quick_start(affy_env: SandboxServer) -> None:
    app = run_block("flask")["app"]
    client = app.test_client()
    assert client.get("/?ref=partner42", headers=BROWSER).status_code == 404  # no "/" view
    assert client.get_cookie("affy_click_id") is not None
    form = {"email": "ada@example.com", "name": "Ada", "amount": "49.00"}
    assert client.post("/signup", data=form, headers=BROWSER).text == "Welcome!"
    assert client.post("/checkout", data=form, headers=BROWSER).text == "Thank you!"
    assert affy_middleware.flush(10)

    (click,) = affy_env.events("click")
    (registration,) = affy_env.events("registration")
    (payment,) = affy_env.events("payment")
    assert click["body"]["affiliateReference"] == "partner42"
    assert registration["body"]["clickId"] == click["body"]["clickId"]
    assert registration["body"]["email"] == "ada@example.com"
    assert payment["body"]["sessionId"] == click["body"]["sessionId"]
    assert payment["body"]["leadValue"] == Decimal("49.00")
    assert payment["affiliate_reference"] == "partner42"


@pytest.mark.anyio
async def test_fastapi_quick_start(affy_env: SandboxServer) -> None:
    app = run_block("fastapi")["app"]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://shop.test", headers=BROWSER
    ) as client:
        await client.get("/?ref=partner7")
        assert client.cookies.get("affy_click_id")
        response = await client.post("/signup", data={"email": "bob@example.com"})
        assert response.json() == {"ok": True}
    assert affy_middleware.flush(10)
    (click,) = affy_env.events("click")
    (registration,) = affy_env.events("registration")
    assert click["body"]["affiliateReference"] == "partner7"
    assert registration["body"]["clickId"] == click["body"]["clickId"]
    assert registration["body"]["email"] == "bob@example.com"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_pytest_fixture_example(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    # The user's own shop: the Flask quick start inside an app factory.
    flask_app = textwrap.indent(readme_block("flask"), "    ")
    pytester.makepyfile(yourshop=f"def create_app():\n{flask_app}\n    return app\n")
    pytester.makepyfile(test_user=readme_block("pytest"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_settings_table_lists_every_variable() -> None:
    text = README.read_text(encoding="utf-8")
    table = set(re.findall(r"^\| `(AFFY_[A-Z_]+)` \|", text, re.MULTILINE))
    assert set(ENV_VARS) <= table, f"missing from the README: {set(ENV_VARS) - table}"
    assert table == set(ENV_VARS), f"not settings: {table - set(ENV_VARS)}"
