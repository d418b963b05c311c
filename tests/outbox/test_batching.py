"""``Batch``: concurrent calls coalesced into one run (the relay's deletes), each caller
returning once its own item is done, or raising its group's error."""

from __future__ import annotations

import threading

import pytest

from affy_middleware.delivery.outbox import OutboxError
from affy_middleware.delivery.outbox.batching import Batch


def test_alone_a_call_runs_at_once() -> None:
    runs: list[list[int]] = []
    batch: Batch[int] = Batch(runs.append)
    batch(1)
    batch(2)
    assert runs == [[1], [2]]


def test_callers_arriving_during_a_run_share_the_next_one() -> None:
    first_running, release = threading.Event(), threading.Event()
    runs: list[list[int]] = []

    def run(items: list[int]) -> None:
        runs.append(list(items))
        if items == [0]:
            first_running.set()
            assert release.wait(10)

    batch: Batch[int] = Batch(run)
    first = threading.Thread(target=batch, args=(0,))
    first.start()
    assert first_running.wait(10)
    returned: list[int] = []
    lock = threading.Lock()

    def call(i: int) -> None:
        batch(i)
        with lock:
            returned.append(i)

    others = [threading.Thread(target=call, args=(i,)) for i in range(1, 6)]
    for t in others:
        t.start()
    # All five are waiting behind the first run (none has returned: not done yet).
    for _ in range(200):
        with batch._cond:
            if len(batch._open.items) == 5:
                break
        threading.Event().wait(0.01)
    assert returned == []
    release.set()
    for t in [first, *others]:
        t.join(10)
    assert runs[0] == [0] and sorted(runs[1]) == [1, 2, 3, 4, 5] and len(runs) == 2
    assert sorted(returned) == [1, 2, 3, 4, 5]


def test_every_caller_of_a_failed_run_gets_its_error() -> None:
    gate, release = threading.Event(), threading.Event()
    calls = []

    def run(items: list[int]) -> None:
        calls.append(list(items))
        if items == [0]:
            gate.set()
            assert release.wait(10)
            return
        raise OutboxError("server gone")

    batch: Batch[int] = Batch(run)
    first = threading.Thread(target=batch, args=(0,))
    first.start()
    assert gate.wait(10)
    errors: list[BaseException] = []

    def call(i: int) -> None:
        try:
            batch(i)
        except OutboxError as exc:
            errors.append(exc)

    others = [threading.Thread(target=call, args=(i,)) for i in (1, 2, 3)]
    for t in others:
        t.start()
    for _ in range(200):
        with batch._cond:
            if len(batch._open.items) == 3:
                break
        threading.Event().wait(0.01)
    release.set()
    for t in [first, *others]:
        t.join(10)
    assert len(errors) == 3 and all(str(e) == "server gone" for e in errors)
    assert len({id(e) for e in errors}) == 3  # each thread its own exception object
    with pytest.raises(OutboxError):  # and the next call runs anew
        batch(4)
