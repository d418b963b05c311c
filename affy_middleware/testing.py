"""pytest plugin: assert on what your app would report to AFFY, without sending it.

Installed with the package (the ``pytest11`` entry point), so the fixture is available in
your own test suite::

    def test_checkout_reports_the_payment(affy_events, client):
        client.get("/?ref=partner42")
        client.post("/checkout", data={"amount": "99.00"})
        payment = affy_events.one("payment")
        assert payment.body["leadValue"] == Decimal("99.00")
        assert affy_events.kinds == ["click", "payment"]

While the fixture is active every event any thread enqueues is appended to
``affy_events`` (an :class:`Event` list) and nothing goes over the network, whatever the
settings say (``AFFY_DELIVERY``, ``AFFY_SPOOL_PATH`` and ``AFFY_API_URL`` are ignored).

No ``AFFY_CLIENT_ID`` in the test environment? Tracking is off without one, and an app
with tracking off reports nothing, so the fixture sets ``AFFY_CLIENT_ID`` for the duration
of the test when it is missing (to the ``affy_client_id`` ini option, default ``1``; it is
safe, nothing is sent). That reaches every ``Settings`` built *during* the test, and
``report_registration`` / ``report_payment`` outside a request. An app built at import
time, before the fixture ran, keeps the settings it read then: create the app in a
fixture that requests ``affy_events`` (an app factory), pass ``client_id=`` explicitly, or
set ``AFFY_CLIENT_ID`` in the environment your tests run with.

Django: the app reads ``settings.AFFY_*`` once, at start-up; the fixture reads them again
(with the id when they have none), so ``report_*`` outside a request use ``settings.py``'s
values in tests as in production. The recipe with pytest-django: ``docs/django.md``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from . import _defaults
from ._errors import AffyConfigError
from ._settings import Settings
from ._wire import Event
from .delivery import CaptureBackend, installed

__all__ = ["CapturedEvents", "affy_events"]

#: The client id the fixture puts in the environment when the tests run without one.
DEFAULT_TEST_CLIENT_ID = "1"


class CapturedEvents(list[Event]):
    """The events enqueued while the fixture is active, oldest first."""

    @property
    def kinds(self) -> list[str]:
        """Their kinds, in order: ``["click", "registration", "payment"]``."""
        return [event.kind for event in self]

    def of(self, kind: str) -> list[Event]:
        """The events of one kind (``click``, ``registration``, ``registration_lead``,
        ``payment``)."""
        return [event for event in self if event.kind == kind]

    def bodies(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The JSON bodies as AFFY would receive them (amounts as ``Decimal``)."""
        return [event.body for event in self if kind is None or event.kind == kind]

    def one(self, kind: str) -> Event:
        """The single event of ``kind``; fails the test when there are none or several."""
        found = self.of(kind)
        if len(found) != 1:
            raise AssertionError(
                f"expected exactly one {kind!r} event, got {len(found)}: {self.kinds}"
            )
        return found[0]

    @property
    def settings(self) -> Settings:
        """Settings from the (test) environment, active: handy to build an app with."""
        return Settings.from_env()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "affy_client_id",
        "AFFY_CLIENT_ID the affy_events fixture sets when the environment has none",
        default=DEFAULT_TEST_CLIENT_ID,
    )


@pytest.fixture
def affy_events(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CapturedEvents]:
    """Capture every AFFY event enqueued during the test instead of sending it."""
    if not os.environ.get("AFFY_CLIENT_ID", "").strip():
        monkeypatch.setenv("AFFY_CLIENT_ID", str(request.config.getini("affy_client_id")))
    events = CapturedEvents()
    with installed(CaptureBackend(events)):
        # Settings read before the test are read again (with the id), inside the capture:
        # reading them may open the backend of an outbox, which must be ours.
        monkeypatch.setattr(_defaults, "_default", None)
        django_conf = _django_conf()
        if django_conf is not None:
            _read_django_settings(django_conf)
        try:
            yield events
        finally:
            if django_conf is not None:
                django_conf.forget()  # the test's AFFY_CLIENT_ID must not outlive it


def _django_conf() -> ModuleType | None:
    """The Django integration's settings module when it is in use with configured settings."""
    module = sys.modules.get("affy_middleware.django.conf")
    django_settings = getattr(sys.modules.get("django.conf"), "settings", None)
    if module is None or not getattr(django_settings, "configured", False):
        return None
    return module


def _read_django_settings(django_conf: ModuleType) -> None:
    # Django's app read settings.py once, at start-up (before any fixture): without this,
    # ``report_*`` outside a request would fall back to the environment alone.
    # A malformed setting is not the fixture's failure: the middleware raises it where the
    # test meets it (and ``manage.py check`` names it).
    django_conf.forget()
    with contextlib.suppress(AffyConfigError):
        django_conf.configured()  # made the default for work outside a request
