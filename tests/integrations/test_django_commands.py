"""Management commands end to end, in real ``python -m django`` processes whose AFFY
settings are only in ``settings.py`` (no ``AFFY_*`` variable in their environment)."""

from __future__ import annotations

import json
import subprocess
from decimal import Decimal

import pytest

pytest.importorskip("django")

import djproject  # noqa: E402

from affy_middleware import cli  # noqa: E402
from affy_middleware.django.commands import _affy_commands  # noqa: E402
from affy_middleware.sandbox import SandboxServer  # noqa: E402

pytestmark = pytest.mark.process

SESSION = "s" * 22


def manage(
    sandbox: SandboxServer | None, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    extra = dict(env)
    if sandbox is not None:
        extra.update(
            DJPROJECT_AFFY_CLIENT_ID="1",
            DJPROJECT_AFFY_API_URL=sandbox.url,
            DJPROJECT_AFFY_API_KEY=sandbox.api_key or "",
        )
    return subprocess.run(
        [djproject.PYTHON, "-m", "django", *args],
        env=djproject.subprocess_env(**extra),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_affy_doctor_reads_settings_py(sandbox: SandboxServer) -> None:
    done = manage(sandbox, "affy_doctor", "--json")
    assert done.returncode == 0, done.stderr + done.stdout
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert report["settings"]["api_url"] == sandbox.url
    assert report["settings"]["client_id"] == 1 and report["settings"]["api_key"] == "set"


def test_affy_doctor_fails_with_django_exit_code() -> None:
    done = manage(None, "affy_doctor", DJPROJECT_AFFY_API_URL="http://127.0.0.1:9")
    assert done.returncode == 1, done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    assert "affy doctor exited with 1" in done.stderr


def test_affy_send_test_goes_to_the_sandbox(sandbox: SandboxServer) -> None:
    done = manage(sandbox, "affy_send_test", "--affiliate", "dj-send-test")
    assert done.returncode == 0, done.stderr + done.stdout
    kinds = [(e["kind"], e["affiliate_reference"]) for e in sandbox.events()]
    assert kinds[:2] == [("click", "dj-send-test"), ("registration", "dj-send-test")]


def test_affy_outbox_runs_the_cli_command_or_says_it_is_missing() -> None:
    done = manage(None, "affy_outbox", "--help")
    if "outbox" in _affy_commands():
        assert done.returncode == 0 and "outbox" in done.stdout, done.stderr
    else:
        done = manage(None, "affy_outbox")
        assert done.returncode == 1 and "Traceback" not in done.stderr
        assert "`affy outbox` is not part of this affy_middleware version" in done.stderr


def test_report_payment_from_a_management_command(sandbox: SandboxServer) -> None:
    done = manage(sandbox, "djproject_pay", SESSION, "49.90")
    assert done.returncode == 0, done.stderr + done.stdout
    assert done.stdout.strip() == "accepted=True delivered=True"
    (payment,) = sandbox.events("payment")
    assert payment["body"]["sessionId"] == SESSION
    assert Decimal(str(payment["body"]["leadValue"])) == Decimal("49.90")


def test_a_malformed_setting_is_named_by_check() -> None:
    done = manage(None, "check", DJPROJECT_AFFY_CLIENT_ID="0x1")
    assert done.returncode != 0
    assert "affy.E001" in done.stderr and "AFFY_CLIENT_ID" in done.stderr


def test_cli_unchanged_by_the_commands() -> None:
    assert {"doctor", "send-test"} <= _affy_commands() and callable(cli.main)
