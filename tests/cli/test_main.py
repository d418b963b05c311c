"""``affy`` itself: help, version, usage errors (exit 2), Ctrl-C (exit 130)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import pytest
from _cli import COMMAND, affy, env_without_affy


def test_help_lists_every_command_and_the_exit_codes() -> None:
    run = affy("--help", env=env_without_affy())
    assert run.code == 0
    for command in ("sandbox", "status", "doctor", "send-test"):
        assert command in run.out
    assert "exit codes" in run.out and "2    bad command-line arguments" in run.out
    for command in ("status", "doctor", "send-test"):
        sub = affy(command, "--help", env=env_without_affy())
        assert sub.code == 0, sub.text
        assert "exit codes" in sub.out and "--api-url" in sub.out
    assert "--json" in affy("doctor", "--help", env=env_without_affy()).out
    sandbox_help = affy("sandbox", "--help", env=env_without_affy())
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
        (("sandbox", "--error-rate", "2"), "--error-rate: must be a share from 0 to 1"),
        (("sandbox", "--latency", "-1"), "--latency: must be a number of seconds"),
        (("sandbox", "--latency", "nan"), "--latency"),
        (("status", "a b"), "SESSION_ID: must be a session id"),
        (("status", "s" * 129), "SESSION_ID"),
        (("doctor", "--timeout", "0"), "--timeout: must be more than 0"),
        (("send-test", "--wait", "-1"), "--wait: must be from 0 to 300 seconds"),
    ],
)
def test_bad_arguments_exit_2_with_a_usage_line(args: tuple[str, ...], words: str) -> None:
    run = affy(*args, env=env_without_affy())
    assert run.code == 2, run.text
    assert words in run.err
    assert "error" in run.err
    assert run.out == ""


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
            env=env_without_affy(AFFY_API_KEY="k"),
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
