"""Conversions inside Django transactions: handed over on commit, never on a rollback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("django")

import djproject  # noqa: E402

djproject.setup_in_process()

from django.db import connections, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from djproject.views import create_table, signups  # noqa: E402

from affy_middleware import delivery, report_registration  # noqa: E402
from affy_middleware._wire import Event  # noqa: E402
from affy_middleware.django.conf import configured  # noqa: E402

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


@pytest.fixture
def events() -> Iterator[list[Event]]:
    with override_settings(AFFY_CLIENT_ID=7), delivery.capture() as captured:
        configured()  # report_* outside a request: settings.py's, as in a job
        yield captured


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch, events: list[Event]) -> Iterator[Client]:
    create_table()
    with connections["default"].cursor() as cursor:
        cursor.execute("DELETE FROM signup")
    # ATOMIC_REQUESTS for these tests only (the other Django tests have async views).
    monkeypatch.setitem(connections.settings["default"], "ATOMIC_REQUESTS", True)
    with override_settings(ROOT_URLCONF="djproject.urls", MIDDLEWARE=djproject.settings.MIDDLEWARE):
        client = Client(headers={"user-agent": CHROME})
        client.get("/?ref=dj_tx")
        yield client


def test_atomic_request_rolled_back_reports_nothing(client: Client, events: list[Event]) -> None:
    events.clear()  # the landing's click
    response = client.post("/signup-rolled-back", {"email": "ghost@example.com"})
    assert response.status_code == 200
    assert signups() == [] and events == []


def test_atomic_request_committed_reports_once(client: Client, events: list[Event]) -> None:
    response = client.post("/signup", {"email": "real@example.com"})
    assert response.status_code == 201
    assert signups() == ["real@example.com"]
    click, registration = events
    assert registration.body == {"clickId": click.body["clickId"], "email": "real@example.com"}


def test_savepoints_report_what_committed(client: Client, events: list[Event]) -> None:
    response = client.get("/signup-savepoints")
    assert response.status_code == 200
    assert signups() == ["kept@example.com"]
    assert [e.body.get("email") for e in events if e.kind == "registration"] == ["kept@example.com"]


def test_report_waits_for_the_commit(events: list[Event]) -> None:
    with transaction.atomic():
        assert report_registration(email="later@example.com", click_id="c" * 22) is True
        assert events == []  # not before the commit
    assert [e.body["email"] for e in events] == ["later@example.com"]
    with transaction.atomic():
        report_registration(email="never@example.com", click_id="c" * 22)
        transaction.set_rollback(True)
    assert len(events) == 1


def test_outside_a_transaction_the_event_goes_at_once(events: list[Event]) -> None:
    assert not connections["default"].in_atomic_block
    assert report_registration(email="now@example.com", click_id="c" * 22) is True
    assert [e.body["email"] for e in events] == ["now@example.com"]
