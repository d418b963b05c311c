"""A Django request under ATOMIC_REQUESTS whose database is also the outbox: the
registration's row is written in the request's transaction, then sent to the sandbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("django")

import djproject  # noqa: E402

djproject.setup_in_process()

from django.db import connections  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from djproject.views import create_table, signups  # noqa: E402

import affy_middleware  # noqa: E402
from affy_middleware.delivery.thread import ThreadBackend  # noqa: E402
from affy_middleware.sandbox import SandboxServer  # noqa: E402

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


def outbox_rows() -> int:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM affy_outbox")
        return int(cursor.fetchone()[0])


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch, sandbox: SandboxServer) -> Iterator[Client]:
    create_table()
    with connections["default"].cursor() as cursor:
        cursor.execute("DELETE FROM signup")
    monkeypatch.setitem(connections.settings["default"], "ATOMIC_REQUESTS", True)
    database = connections["default"].settings_dict["NAME"]
    with override_settings(
        ROOT_URLCONF="djproject.urls",
        MIDDLEWARE=djproject.settings.MIDDLEWARE,
        AFFY_CLIENT_ID=1,
        AFFY_API_URL=sandbox.url,
        AFFY_API_KEY=sandbox.api_key or "",
        AFFY_SPOOL_PATH=database,
    ):
        try:
            assert affy_middleware.flush(30)  # the outbox is open, its tables made
            yield Client(headers={"user-agent": CHROME})
        finally:
            affy_middleware.shutdown(5)


def test_the_signup_and_its_row_commit_together(
    client: Client, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.get("/?ref=dj_outbox")
    assert affy_middleware.flush(30)
    written: list[int] = []
    # Seen at the commit: the row is there, written by the request's transaction (and
    # then sent by flush, the keeper not being woken here).
    monkeypatch.setattr(ThreadBackend, "rows_written", lambda self: written.append(outbox_rows()))
    response = client.post("/signup", {"email": "row@example.com"})
    assert response.status_code == 201 and signups() == ["row@example.com"]
    assert written == [1]
    assert affy_middleware.flush(30) and outbox_rows() == 0
    (registration,) = sandbox.events("registration")
    (click,) = sandbox.events("click")
    assert registration["click_id"] == click["click_id"]


def test_a_rolled_back_signup_leaves_no_row(
    client: Client, sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    client.get("/?ref=dj_outbox")
    assert affy_middleware.flush(30) and outbox_rows() == 0  # the click went
    response = client.post("/signup-rolled-back", {"email": "ghost@example.com"})
    assert response.status_code == 200 and signups() == []
    assert outbox_rows() == 0
    assert affy_middleware.flush(30)
    assert sandbox.events("registration") == []
    assert not [r for r in caplog.records if r.levelname == "WARNING"]  # nothing went wrong


def test_a_server_that_cannot_answer_is_asked_again_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from affy_middleware.delivery.outbox.app_rows import Address
    from affy_middleware.django import outbox

    answers: list[bool | None] = [None, True]
    asked: list[int] = []

    def compare(where: Address, connection: object) -> bool | None:
        asked.append(1)
        return answers.pop(0)

    outbox.forget()
    monkeypatch.setattr(outbox, "_compare", compare)
    where = Address("postgresql", "postgresql://u@127.0.0.1:9/x")
    try:
        assert outbox._is_same("default", where, None) is False  # cannot tell: not now
        assert outbox._is_same("default", where, None) is False and len(asked) == 1
        monkeypatch.setattr(outbox, "RETRY_AFTER", 0.0)
        outbox._retry_at.clear()
        assert outbox._is_same("default", where, None) is True  # asked again
        assert outbox._is_same("default", where, None) is True and len(asked) == 2
    finally:
        outbox.forget()
