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
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from . import _resolution
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
    # Settings read from the environment before the test are read again (with the id).
    monkeypatch.setattr(_resolution, "_default", None)
    events = CapturedEvents()
    with installed(CaptureBackend(events)):
        yield events
