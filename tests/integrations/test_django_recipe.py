"""The pytest-django recipe of ``docs/django.md``, run as a user runs it: its own pytest
session on ``tests/djrecipe/`` (settings module, ``pytest.ini``, ``conftest.py``, tests), in
a subprocess, with pytest-django and our plugin loaded from their entry points. The main
suite does not collect ``tests/djrecipe/`` (``tests/conftest.py``) and runs without
pytest-django (``-p no:django``: it configures Django itself, ``tests/djproject/``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("django")
pytest.importorskip("pytest_django")

import djproject  # noqa: E402

djproject.setup_in_process()

from django.test.utils import override_settings  # noqa: E402

from affy_middleware import delivery, report_payment  # noqa: E402
from affy_middleware._wire import Event  # noqa: E402
from affy_middleware.django.conf import configured  # noqa: E402

RECIPE = Path(__file__).resolve().parents[1] / "djrecipe"
#: The recipe's tests, every one of which must pass.
RECIPE_TESTS = {
    "test_a_landing_sets_the_cookies_and_reports_the_click",
    "test_a_signup_is_reported_when_it_commits",
    "test_without_the_commit_the_signup_is_not_reported_yet",
    "test_a_rolled_back_signup_reports_nothing",
    "test_real_commits_with_transactional_db",
    "test_settings_overrides_are_seen",
    "test_a_renewal_outside_a_request_uses_settings_py",
}


def run_recipe() -> subprocess.CompletedProcess[str]:
    # As on a developer's machine: no AFFY_* (settings.py has them), no settings module but
    # the ini's, no PYTEST_ADDOPTS; this interpreter, so this checkout's affy_middleware.
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AFFY_", "DJANGO_", "PYTEST_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(RECIPE / "pytest.ini"), "-v"]
        + ["-p", "no:cacheprovider", "--rootdir", str(RECIPE)],
        cwd=RECIPE,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_this_suite_runs_without_pytest_django(request: pytest.FixtureRequest) -> None:
    assert not request.config.pluginmanager.has_plugin("django")


@pytest.mark.process
def test_the_recipe_passes_under_pytest_django() -> None:
    done = run_recipe()
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    # pytest-django ran the session, with the ini's settings module.
    assert re.search(r"^django: .*settings: shop\.settings \(from ini\)", output, re.M), output
    passed = set(re.findall(r"::(\S+) PASSED", output))
    assert passed == RECIPE_TESTS, output
    summary = output.strip().splitlines()[-1]
    assert re.fullmatch(rf"=+ {len(RECIPE_TESTS)} passed in [\d.]+s(?: \(.*\))? =+", summary)


def test_the_docs_show_the_files_tested() -> None:
    docs = (RECIPE.parents[1] / "docs" / "django.md").read_text()
    section = docs.split("### The recipe with pytest-django", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```\w+\n# (\S+).*?\n(.*?)^```$", section, re.M | re.S)
    assert len(blocks) == 6 and {name for name, _ in blocks} >= {
        "conftest.py",
        "pytest.ini",
        "tests/test_affiliate_tracking.py",
    }
    for name, text in blocks:
        assert text in (RECIPE / name).read_text(), f"docs/django.md's {name} is not the tested one"


@pytest.fixture
def events() -> Iterator[list[Event]]:
    with override_settings(AFFY_CLIENT_ID=7), delivery.capture() as captured:
        configured()  # settings.py's, the default for report_* outside a request
        yield captured


def test_report_outside_a_request_sees_a_settings_override(events: list[Event]) -> None:
    with override_settings(AFFY_CLIENT_ID=99):
        assert report_payment("5.00", session_id="s" * 22) is True
    assert [event.body["clientId"] for event in events] == [99]
