"""The ``affy.*`` system checks, each triggered by a project that gets it wrong."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("django")

import djproject  # noqa: E402

djproject.setup_in_process()

from django.core import checks  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

SECURITY = "django.middleware.security.SecurityMiddleware"
OURS = "affy_middleware.django.AffyMiddleware"
SESSIONS = "django.contrib.sessions.middleware.SessionMiddleware"


def affy_ids(**settings: Any) -> list[str]:
    with override_settings(**settings):
        return sorted(m.id for m in checks.run_checks(tags=["affy"]))


@pytest.mark.parametrize(
    ("settings", "ids"),
    [
        pytest.param({"MIDDLEWARE": [SECURITY, OURS]}, [], id="right"),
        pytest.param({"AFFY_CLIENT_ID": "abc"}, ["affy.E001"], id="malformed-client-id"),
        pytest.param(
            {"AFFY_API_URL": "http://affy.example.com"}, ["affy.E001"], id="plain-http-api-url"
        ),
        pytest.param({"MIDDLEWARE": [SECURITY, SESSIONS]}, ["affy.W001"], id="missing"),
        pytest.param({"MIDDLEWARE": [SECURITY, OURS, SESSIONS, OURS]}, ["affy.E002"], id="twice"),
        pytest.param(
            {"MIDDLEWARE": [OURS, SECURITY], "SECURE_SSL_REDIRECT": True},
            ["affy.E003"],
            id="before-ssl-redirect",
        ),
        pytest.param(
            {"MIDDLEWARE": [OURS, SECURITY], "SECURE_SSL_REDIRECT": False},
            [],
            id="before-security-without-redirect",
        ),
        pytest.param(
            {"MIDDLEWARE": ["djproject.middleware.Consenting", SECURITY]},
            [],
            id="a-subclass-counts",
        ),
    ],
)
def test_checks(settings: dict[str, Any], ids: list[str]) -> None:
    assert affy_ids(**settings) == ids


def test_e001_names_the_setting() -> None:
    with override_settings(AFFY_CLIENT_ID="abc"):
        (error,) = checks.run_checks(tags=["affy"])
    assert "AFFY_CLIENT_ID" in error.msg and error.level == checks.ERROR
