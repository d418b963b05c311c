"""``affy doctor`` against the sandbox: each check, its failure and its fix."""

from __future__ import annotations

from pathlib import Path

from _cli import WRONG_KEY, affy, closed_port, sandbox_env

from affy_middleware.sandbox import SandboxServer


def test_doctor_passes_against_the_sandbox(sandbox: SandboxServer) -> None:
    run = affy("doctor", env=sandbox_env(sandbox))
    assert run.code == 0, run.text
    assert "all checks passed" in run.out
    assert "[ok  ] api key: accepted" in run.out
    assert f"[ok  ] reach: {sandbox.url} answered" in run.out
    # The probe is a status call: nothing is recorded as a tracking event.
    assert sandbox.events() == []
    assert [r["path"].rsplit("/", 1)[0] for r in sandbox.requests()] == ["/api/v1/tracking/status"]


def test_doctor_json_for_scripts(sandbox: SandboxServer) -> None:
    run = affy("doctor", "--json", env=sandbox_env(sandbox))
    assert run.code == 0, run.text
    data = run.json()
    assert data["ok"] is True
    checks = {c["name"]: c["status"] for c in data["checks"]}
    assert checks["client id"] == checks["reach"] == checks["api key"] == "ok"
    assert data["settings"]["api_key"] == "set"
    assert data["settings"]["client_id"] == 1


def test_doctor_without_client_id_says_so_and_how_to_fix(sandbox: SandboxServer) -> None:
    env = sandbox_env(sandbox)
    del env["AFFY_CLIENT_ID"]
    run = affy("doctor", env=env)
    assert run.code == 1
    assert "[FAIL] client id: AFFY_CLIENT_ID is not set" in run.out
    assert "fix: export AFFY_CLIENT_ID=" in run.out
    assert "1 problem(s) to fix" in run.err
    data = affy("doctor", "--json", env=env).json()
    assert data["ok"] is False
    [failed] = [c for c in data["checks"] if c["status"] == "fail"]
    assert failed["name"] == "client id" and "AFFY_CLIENT_ID" in failed["fix"]


def test_doctor_wrong_key_is_one_problem_with_a_fix(sandbox: SandboxServer) -> None:
    run = affy("doctor", env=sandbox_env(sandbox, AFFY_API_KEY=WRONG_KEY))
    assert run.code == 1
    assert "[FAIL] api key:" in run.out and "rejected the API key (HTTP 401" in run.out
    assert "fix: copy the API key again" in run.out
    assert "[ok  ] reach:" in run.out  # reachable: only the key is wrong


def test_doctor_missing_key_when_the_api_wants_one(sandbox: SandboxServer) -> None:
    env = sandbox_env(sandbox)
    del env["AFFY_API_KEY"]
    run = affy("doctor", env=env)
    assert run.code == 1
    assert "wants an API key (HTTP 401) and none is set" in run.out


def test_doctor_flag_overrides_the_environment(sandbox: SandboxServer) -> None:
    env = sandbox_env(sandbox, AFFY_API_KEY=WRONG_KEY, AFFY_CLIENT_ID="abc")
    run = affy("doctor", "--api-key", "test-key", "--client-id", "7", env=env)
    assert run.code == 0, run.text
    assert "client id: 7" in run.out


def test_doctor_unreachable_api(sandbox: SandboxServer) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    run = affy("doctor", "--api-url", url, env=sandbox_env(sandbox))
    assert run.code == 1
    assert f"[FAIL] reach: could not reach AFFY at {url}" in run.out
    assert "fix: start the local sandbox (`affy sandbox`)" in run.out


def test_doctor_timeout_is_bounded(sandbox: SandboxServer) -> None:
    sandbox.set_faults(latency=5.0)
    run = affy("doctor", "--timeout", "0.3", env=sandbox_env(sandbox), timeout=30)
    assert run.code == 1
    assert "did not answer within 0.3s" in run.out


def test_doctor_not_an_affy_api(sandbox: SandboxServer) -> None:
    # The dashboard's host with a path prefix: the status path under it is a 404.
    run = affy("doctor", "--api-url", sandbox.url + "/nothing", env=sandbox_env(sandbox))
    assert run.code == 1
    assert "does not look like the AFFY Tracking API" in run.out
    assert "base URL without a path" in run.out


def test_doctor_malformed_setting(sandbox: SandboxServer) -> None:
    run = affy("doctor", env=sandbox_env(sandbox, AFFY_CLIENT_ID="forty-two"))
    assert run.code == 1
    assert "[FAIL] settings: AFFY_CLIENT_ID='forty-two' is not a client id" in run.out


def test_doctor_warnings_do_not_fail(sandbox: SandboxServer) -> None:
    run = affy("doctor", env=sandbox_env(sandbox, AFFY_DELIVERY="off", AFFY_ENABLED="0"))
    assert run.code == 0, run.text
    assert "[WARN] enabled: AFFY_ENABLED is false: tracking is off" in run.out
    assert "[WARN] delivery: AFFY_DELIVERY=off" in run.out
    assert "all checks passed" in run.out


def test_doctor_unwritable_spool_directory(sandbox: SandboxServer, tmp_path: Path) -> None:
    spool = str(tmp_path / "missing-dir" / "spool.db")
    run = affy("doctor", env=sandbox_env(sandbox, AFFY_SPOOL_PATH=spool))
    assert run.code == 1
    assert "[FAIL] outbox:" in run.out
