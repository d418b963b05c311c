"""The ``affy`` console script, run as a real subprocess against a sandbox in this process.

Every run checks the contract of a command-line tool: the exit code, where the words go
(stdout for results, stderr for problems), no traceback, and the API key never printed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from _helpers import close_process, read_lines

from affy_middleware import AffyClient
from affy_middleware.sandbox import SandboxServer

SCRIPT = Path(sys.executable).parent / "affy"
#: The installed console script; `python -m affy_middleware.cli` if it is not installed.
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "affy_middleware.cli"]
WRONG_KEY = "wrong-key-7d1f"


def _env(**affy: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFFY_")}
    env.update(affy)
    return env


def _sandbox_env(sandbox: SandboxServer, **extra: str) -> dict[str, str]:
    assert sandbox.api_key is not None
    values = {
        "AFFY_API_URL": sandbox.url,
        "AFFY_CLIENT_ID": "1",
        "AFFY_API_KEY": sandbox.api_key,
    }
    values.update(extra)
    return _env(**values)


class Run:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    @property
    def text(self) -> str:
        return self.out + self.err

    def json(self) -> Any:
        return json.loads(self.out)


def affy(*args: str, env: dict[str, str], timeout: float = 60) -> Run:
    proc = subprocess.run(
        [*COMMAND, *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    run = Run(proc)
    assert "Traceback" not in run.text, run.text
    for secret in ("test-key", WRONG_KEY):
        # The key may appear in our own command line, never in the tool's output.
        assert secret not in run.text, run.text
    return run


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- help and usage errors ----------------------------------------------------------------


def test_help_lists_every_command_and_the_exit_codes() -> None:
    run = affy("--help", env=_env())
    assert run.code == 0
    for command in ("sandbox", "status", "doctor", "send-test"):
        assert command in run.out
    assert "exit codes" in run.out and "2    bad command-line arguments" in run.out
    for command in ("status", "doctor", "send-test"):
        sub = affy(command, "--help", env=_env())
        assert sub.code == 0, sub.text
        assert "exit codes" in sub.out and "--api-url" in sub.out
    assert "--json" in affy("doctor", "--help", env=_env()).out
    sandbox_help = affy("sandbox", "--help", env=_env())
    assert sandbox_help.code == 0 and "--port" in sandbox_help.out
    assert sandbox_help.out.startswith("usage: affy sandbox")


def test_version_through_the_module_guard_too() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "affy_middleware.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "affy_middleware 0.1.0" in proc.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((), "required: COMMAND"),
        (("frobnicate",), "invalid choice"),
        (("status",), "SESSION_ID"),
        (("status", "  "), "SESSION_ID"),
        (("doctor", "--client-id", "abc"), "--client-id: must be a positive integer"),
        (("doctor", "--client-id", "0"), "--client-id"),
        (("doctor", "--api-url", "ftp://x"), "--api-url"),
        (("doctor", "--api-url", "http://example.com"), "plain http to a non-loopback host"),
        (("doctor", "--timeout", "-1"), "--timeout"),
        (("doctor", "--api-key", "has space"), "--api-key"),
        (("send-test", "--amount", "-5"), "--amount"),
        (("send-test", "--amount", "lots"), "--amount"),
        (("send-test", "--affiliate", ""), "--affiliate"),
        (("send-test", "--email", "nobody"), "--email: must be an email address"),
        (("sandbox", "--port", "99999"), "--port"),
        (("sandbox", "--port", "eighty"), "--port"),
    ],
)
def test_bad_arguments_exit_2_with_a_usage_line(args: tuple[str, ...], words: str) -> None:
    run = affy(*args, env=_env())
    assert run.code == 2, run.text
    assert words in run.err
    assert "error" in run.err
    assert run.out == ""


# -- affy doctor ----------------------------------------------------------------------------


def test_doctor_passes_against_the_sandbox(sandbox: SandboxServer) -> None:
    run = affy("doctor", env=_sandbox_env(sandbox))
    assert run.code == 0, run.text
    assert "all checks passed" in run.out
    assert "[ok  ] api key: accepted" in run.out
    assert f"[ok  ] reach: {sandbox.url} answered" in run.out
    # The probe is a status call: nothing is recorded as a tracking event.
    assert sandbox.events() == []
    assert [r["path"].rsplit("/", 1)[0] for r in sandbox.requests()] == ["/api/v1/tracking/status"]


def test_doctor_json_for_scripts(sandbox: SandboxServer) -> None:
    run = affy("doctor", "--json", env=_sandbox_env(sandbox))
    assert run.code == 0, run.text
    data = run.json()
    assert data["ok"] is True
    checks = {c["name"]: c["status"] for c in data["checks"]}
    assert checks["client id"] == checks["reach"] == checks["api key"] == "ok"
    assert data["settings"]["api_key"] == "set"
    assert data["settings"]["client_id"] == 1


def test_doctor_without_client_id_says_so_and_how_to_fix(sandbox: SandboxServer) -> None:
    env = _sandbox_env(sandbox)
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
    run = affy("doctor", env=_sandbox_env(sandbox, AFFY_API_KEY=WRONG_KEY))
    assert run.code == 1
    assert "[FAIL] api key:" in run.out and "rejected the API key (HTTP 401" in run.out
    assert "fix: copy the API key again" in run.out
    assert "[ok  ] reach:" in run.out  # reachable: only the key is wrong


def test_doctor_missing_key_when_the_api_wants_one(sandbox: SandboxServer) -> None:
    env = _sandbox_env(sandbox)
    del env["AFFY_API_KEY"]
    run = affy("doctor", env=env)
    assert run.code == 1
    assert "wants an API key (HTTP 401) and none is set" in run.out


def test_doctor_flag_overrides_the_environment(sandbox: SandboxServer) -> None:
    env = _sandbox_env(sandbox, AFFY_API_KEY=WRONG_KEY, AFFY_CLIENT_ID="abc")
    run = affy("doctor", "--api-key", "test-key", "--client-id", "7", env=env)
    assert run.code == 0, run.text
    assert "client id: 7" in run.out


def test_doctor_unreachable_api(sandbox: SandboxServer) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    run = affy("doctor", "--api-url", url, env=_sandbox_env(sandbox))
    assert run.code == 1
    assert f"[FAIL] reach: could not reach AFFY at {url}" in run.out
    assert "fix: start the local sandbox (`affy sandbox`)" in run.out


def test_doctor_timeout_is_bounded(sandbox: SandboxServer) -> None:
    sandbox.set_faults(latency=5.0)
    run = affy("doctor", "--timeout", "0.3", env=_sandbox_env(sandbox), timeout=30)
    assert run.code == 1
    assert "did not answer within 0.3s" in run.out


def test_doctor_not_an_affy_api(sandbox: SandboxServer) -> None:
    # The dashboard's host with a path prefix: the status path under it is a 404.
    run = affy("doctor", "--api-url", sandbox.url + "/nothing", env=_sandbox_env(sandbox))
    assert run.code == 1
    assert "does not look like the AFFY Tracking API" in run.out
    assert "base URL without a path" in run.out


def test_doctor_malformed_setting(sandbox: SandboxServer) -> None:
    run = affy("doctor", env=_sandbox_env(sandbox, AFFY_CLIENT_ID="forty-two"))
    assert run.code == 1
    assert "[FAIL] settings: AFFY_CLIENT_ID='forty-two' is not a client id" in run.out


def test_doctor_warnings_do_not_fail(sandbox: SandboxServer) -> None:
    run = affy("doctor", env=_sandbox_env(sandbox, AFFY_DELIVERY="off", AFFY_ENABLED="0"))
    assert run.code == 0, run.text
    assert "[WARN] enabled: AFFY_ENABLED is false: tracking is off" in run.out
    assert "[WARN] delivery: AFFY_DELIVERY=off" in run.out
    assert "all checks passed" in run.out


def test_doctor_unwritable_spool_directory(sandbox: SandboxServer, tmp_path: Path) -> None:
    spool = str(tmp_path / "missing-dir" / "spool.db")
    run = affy("doctor", env=_sandbox_env(sandbox, AFFY_SPOOL_PATH=spool))
    assert run.code == 1
    assert "[FAIL] spool:" in run.out


# -- affy status ----------------------------------------------------------------------------


def test_status_of_a_referred_and_an_unknown_session(sandbox: SandboxServer) -> None:
    with AffyClient(sandbox.settings()) as client:
        client.click(affiliate_reference="partner-9", click_id="click-abc123", session_id="s-42")
    env = _sandbox_env(sandbox)
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
    wrong = affy("status", "s-1", env=_sandbox_env(sandbox, AFFY_API_KEY=WRONG_KEY))
    assert wrong.code == 1 and wrong.out == ""
    assert wrong.err.startswith("affy: error: AFFY at")
    assert "rejected the API key" in wrong.err and "  fix: " in wrong.err
    url = f"http://127.0.0.1:{_closed_port()}"
    down = affy("status", "s-1", "--api-url", url, env=_sandbox_env(sandbox))
    assert down.code == 1 and "could not reach AFFY" in down.err
    as_json = affy("status", "s-1", "--json", "--api-url", url, env=_sandbox_env(sandbox))
    assert as_json.code == 1
    assert as_json.json()["ok"] is False and "could not reach" in as_json.json()["problem"]
    bad = affy("status", "s-1", env=_sandbox_env(sandbox, AFFY_TIMEOUT="soon"))
    assert bad.code == 1 and "AFFY_TIMEOUT='soon'" in bad.err


@pytest.mark.process
def test_ctrl_c_during_a_call_exits_130() -> None:
    """A server that accepts the connection and never answers: once it has accepted, the
    command is inside the call; Ctrl-C then ends it with 130 and one line, no traceback."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        silent.settimeout(30)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        proc = subprocess.Popen(
            [*COMMAND, "status", "s-1", "--api-url", url, "--timeout", "60"],
            env=_env(AFFY_API_KEY="k"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            connection, _ = silent.accept()
            with connection:
                proc.send_signal(signal.SIGINT)
                out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
    assert proc.returncode == 130, err
    assert err.strip() == "affy: interrupted" and out == ""


# -- affy send-test -------------------------------------------------------------------------


def test_send_test_goes_through_the_pipeline_and_reads_back(sandbox: SandboxServer) -> None:
    run = affy("send-test", "--json", "--amount", "12.5", env=_sandbox_env(sandbox))
    assert run.code == 0, run.text
    data = run.json()
    assert data["ok"] is True
    session = data["session_id"]
    assert data["status"]["hasAffiliate"] is True
    assert data["status"]["affiliateReference"] == "affy-send-test"
    assert data["delivery"]["sent"] == 3
    events = sandbox.events()
    assert [e["kind"] for e in events] == ["click", "registration", "payment"]
    assert {e["session_id"] for e in events} == {session}
    assert {e["affiliate_reference"] for e in events} == {"affy-send-test"}
    assert str(events[2]["lead_value"]) == "12.50"
    # Delivered by the dispatcher: every event carried its Idempotency-Key.
    assert all(e["idempotency_key"] for e in events)


def test_send_test_human_output(sandbox: SandboxServer) -> None:
    run = affy(
        "send-test",
        "--affiliate",
        "partner-x",
        "--email",
        "qa@shop.test",
        env=_sandbox_env(sandbox),
    )
    assert run.code == 0, run.text
    for word in ("reach", "click", "registration", "delivered", "attribution", "ok"):
        assert word in run.out
    assert "attributes session affy-send-test-" in run.out and "to partner-x" in run.out
    events = sandbox.events()
    assert [e["kind"] for e in events] == ["click", "registration"]
    assert events[1]["body"]["email"] == "qa@shop.test"


def test_send_test_sync_delivery_mode(sandbox: SandboxServer) -> None:
    run = affy("send-test", "--json", env=_sandbox_env(sandbox, AFFY_DELIVERY="sync"))
    assert run.code == 0, run.text
    assert run.json()["delivery"]["sent"] == 2


def test_send_test_wrong_key_sends_nothing(sandbox: SandboxServer) -> None:
    run = affy("send-test", env=_sandbox_env(sandbox, AFFY_API_KEY=WRONG_KEY))
    assert run.code == 1
    assert "rejected the API key" in run.err
    assert sandbox.events() == []


def test_send_test_without_client_id(sandbox: SandboxServer) -> None:
    env = _sandbox_env(sandbox)
    del env["AFFY_CLIENT_ID"]
    run = affy("send-test", env=env)
    assert run.code == 1
    assert "AFFY_CLIENT_ID is not set" in run.err and "fix: export AFFY_CLIENT_ID" in run.err


def test_send_test_unreachable(sandbox: SandboxServer) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    run = affy("send-test", "--json", "--api-url", url, env=_sandbox_env(sandbox))
    assert run.code == 1
    assert run.json()["ok"] is False and "could not reach AFFY" in run.json()["problem"]


def test_send_test_events_refused_by_affy(sandbox: SandboxServer) -> None:
    """The status probe passes, but AFFY refuses the events themselves (here: a client id
    beyond what the API accepts): AFFY's reason is reported, nothing is retried."""
    run = affy("send-test", "--client-id", str(2**63), env=_sandbox_env(sandbox))
    assert run.code == 1
    assert "0 of 2 test events delivered" in run.err
    assert "(AFFY refused a click event, not retrying: 400" in run.err
    assert "clientId" in run.err and "fix: AFFY refused them" in run.err
    assert sandbox.events() == []


def test_send_test_slow_affy_fails_within_the_wait(sandbox: SandboxServer) -> None:
    """AFFY answers the status probe, then is too slow for the events: a clear failure,
    and the process exits promptly instead of hanging on the queue."""
    sandbox.set_faults(latency=1.5)
    run = affy("send-test", "--wait", "0.5", env=_sandbox_env(sandbox), timeout=40)
    assert run.code == 1
    assert "of 2 test events delivered (not delivered within --wait 0.5s)" in run.err
    assert "raise --wait" in run.err


# -- affy sandbox ---------------------------------------------------------------------------


@pytest.mark.process
def test_affy_sandbox_serves_until_interrupted() -> None:
    proc = subprocess.Popen(
        [*COMMAND, "sandbox", "--port", "0", "--api-key", "sb-key"],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = read_lines(proc.stdout).get(timeout=30)
        assert first.startswith("AFFY sandbox listening on http://127.0.0.1:")
        url = first.split()[-1]
        assert httpx.get(url + "/", timeout=10).status_code == 200
        env = _env(AFFY_API_URL=url, AFFY_CLIENT_ID="1", AFFY_API_KEY="sb-key")
        assert affy("doctor", env=env).code == 0
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None
        assert "Traceback" not in proc.stderr.read()
    finally:
        close_process(proc)


def test_affy_sandbox_on_a_taken_port_exits_1(sandbox: SandboxServer) -> None:
    run = affy("sandbox", "--port", str(sandbox.port), env=_env(), timeout=30)
    assert run.code == 1
    assert "in use" in run.err
