"""``affy status SESSION_ID``: an attribution, none, and the failures."""

from __future__ import annotations

from _cli import WRONG_KEY, affy, closed_port, sandbox_env

from affy_middleware import AffyClient
from affy_middleware.sandbox import SandboxServer


def test_status_of_a_referred_and_an_unknown_session(sandbox: SandboxServer) -> None:
    with AffyClient(sandbox.settings()) as client:
        client.click(affiliate_reference="partner-9", click_id="click-abc123", session_id="s-42")
    env = sandbox_env(sandbox)
    run = affy("status", "s-42", env=env)
    assert run.code == 0, run.text
    assert "session s-42: referred by affiliate partner-9" in run.out
    assert "click id:   click-abc123" in run.out
    data = affy("status", "--json", "s-42", env=env).json()
    assert data["ok"] is True and data["hasAffiliate"] is True
    assert data["affiliateReference"] == "partner-9" and data["clickedAt"]
    unknown = affy("status", "nobody", env=env)
    assert unknown.code == 0
    assert "no affiliate" in unknown.out
    assert affy("status", "nobody", "--json", env=env).json()["hasAffiliate"] is False


def test_status_failures_are_one_line_and_exit_1(sandbox: SandboxServer) -> None:
    wrong = affy("status", "s-1", env=sandbox_env(sandbox, AFFY_API_KEY=WRONG_KEY))
    assert wrong.code == 1 and wrong.out == ""
    assert wrong.err.startswith("affy: error: AFFY at")
    assert "rejected the API key" in wrong.err and "  fix: " in wrong.err
    url = f"http://127.0.0.1:{closed_port()}"
    down = affy("status", "s-1", "--api-url", url, env=sandbox_env(sandbox))
    assert down.code == 1 and "could not reach AFFY" in down.err
    as_json = affy("status", "s-1", "--json", "--api-url", url, env=sandbox_env(sandbox))
    assert as_json.code == 1
    assert as_json.json()["ok"] is False and "could not reach" in as_json.json()["problem"]
    bad = affy("status", "s-1", env=sandbox_env(sandbox, AFFY_TIMEOUT="soon"))
    assert bad.code == 1 and "AFFY_TIMEOUT='soon'" in bad.err
