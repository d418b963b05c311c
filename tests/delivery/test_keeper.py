"""The lease keeper opens the outbox off the request path, retries while it cannot, and
survives any error in a round (it never ends while the backend runs)."""

from __future__ import annotations

import threading
from pathlib import Path

from affy_middleware.delivery.outbox import Outbox, OutboxError
from affy_middleware.delivery.outbox.keeper import LeaseKeeper, backoff
from affy_middleware.delivery.outbox.sqlite.store import SqliteOutbox


def test_the_keeper_survives_errors_and_goes_on_refilling(tmp_path: Path) -> None:
    outbox = SqliteOutbox(str(tmp_path / "affy.sqlite"))
    rounds: list[int] = []
    refilled_after_errors = threading.Event()
    errors: list[OutboxError] = []

    def refill() -> None:
        rounds.append(1)
        if len(rounds) == 1:
            raise TypeError("a bug of ours")
        if len(rounds) == 2:
            raise OutboxError("disk full")
        refilled_after_errors.set()

    stop = threading.Event()
    keeper = LeaseKeeper(lambda: outbox, refill, errors.append, stop)
    keeper.thread.start()
    try:
        for _ in range(3):  # skip the backoffs: the keeper looks again when woken
            keeper.wake.set()
            if refilled_after_errors.wait(2):
                break
        assert refilled_after_errors.is_set() and keeper.thread.is_alive()
        assert [str(e) for e in errors] == ["disk full"]
    finally:
        stop.set()
        keeper.wake.set()
        keeper.thread.join(5)
    assert not keeper.thread.is_alive()


def test_the_keeper_opens_the_outbox_when_it_can(tmp_path: Path) -> None:
    outbox = SqliteOutbox(str(tmp_path / "affy.sqlite"))
    tries: list[int] = []
    refilled = threading.Event()

    def open_outbox() -> Outbox | None:
        tries.append(1)
        return outbox if len(tries) >= 3 else None  # locked twice, then free

    stop = threading.Event()
    keeper = LeaseKeeper(open_outbox, refilled.set, lambda exc: None, stop)
    keeper.thread.start()
    try:
        for _ in range(5):
            keeper.wake.set()  # a request asks for a try now (GuardedOutbox.want_open)
            if refilled.wait(1):
                break
        assert refilled.is_set() and len(tries) == 3
    finally:
        stop.set()
        keeper.wake.set()
        keeper.thread.join(5)


def test_backoff_grows_and_is_capped() -> None:
    waits = [backoff(n) for n in range(12)]
    assert waits[0] == 1.0 and waits[1] < waits[2] < waits[3] and max(waits) == 30.0
