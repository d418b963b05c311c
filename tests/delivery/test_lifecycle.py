"""The thread backend's lifecycle under contention (issue 10, item 2): ``submit``,
``close`` and ``flush`` interleaved from many threads, with a fake transport. No lock is
ever replaced under a waiting thread, no count goes negative, every ``flush`` returns by
its deadline, and every accepted event ends up counted exactly once:
``enqueued == sent + dropped + queued + in_flight``."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
from _delivery import OFFLINE, Make, fast_policy, payment

from affy_middleware._errors import AffyServerError
from affy_middleware._wire import Event
from affy_middleware.delivery import Backend, State, make_backend

#: Faster still than the shared policy, with a higher threshold: thousands of events a test.
POLICY = fast_policy(base=0.005, cap=0.02, failure_threshold=5, min_pause=0.005)
#: How late a flush(timeout) may return, on a loaded 2-core machine.
SLACK = 0.25


class FlakyTransport:
    """Answers after a short random wait; fails one call in ``fail_one_in`` with a 503."""

    def __init__(self, fail_one_in: int = 0) -> None:
        self.lock = threading.Lock()
        self.sent: list[str] = []
        self.fail_one_in = fail_one_in
        self.rng = random.Random(10)

    def __call__(self, event: Event) -> dict[str, object]:
        with self.lock:
            delay = self.rng.random() / 1000
            failing = self.fail_one_in and self.rng.randrange(self.fail_one_in) == 0
        threading.Event().wait(delay)  # stands in for network latency
        if failing:
            raise AffyServerError("down", status_code=503)
        with self.lock:
            self.sent.append(event.event_id)
        return {"success": True}


def interleave(d: Backend, *, submitters: int, per_thread: int, closers: int) -> dict[str, object]:
    """Submit from ``submitters`` threads while ``closers`` threads close and others
    flush; returns what went wrong (late flushes, negative counts, blocked threads)."""
    stop = threading.Event()
    late: list[float] = []
    negative: list[dict[str, int]] = []
    accepted: list[str] = []
    errors: list[BaseException] = []

    def guard(body: object) -> None:
        try:
            body()  # type: ignore[operator]
        except BaseException as exc:  # noqa: BLE001 (collected, asserted below)
            errors.append(exc)

    go = threading.Barrier(submitters)

    def submitter(n: int) -> None:
        go.wait(10)
        for i in range(per_thread):
            if i % 25 == 0:
                time.sleep(0)  # let the closers and flushers in between submits
            event = payment(f"t{n}-{i % 7}")  # a few visits per thread, kept in order
            if d.submit(event):
                accepted.append(event.event_id)

    def closer() -> None:
        for _ in range(2000):
            if stop.is_set():
                return
            d.close(random.choice([0.0, 0.005, 0.02]))

    def flusher() -> None:
        for _ in range(2000):
            if stop.is_set():
                return
            timeout = random.choice([0.0, 0.01, 0.05])
            start = time.monotonic()
            d.flush(timeout)
            took = time.monotonic() - start
            if took > timeout + SLACK:
                late.append(took)

    def watcher() -> None:
        for _ in range(2000):
            if stop.wait(0.002):
                return
            s = d.stats()
            if any(value < 0 for value in s.values()):
                negative.append(dict(s))

    subs = [
        threading.Thread(target=guard, args=(lambda n=n: submitter(n),)) for n in range(submitters)
    ]
    others = [threading.Thread(target=guard, args=(closer,)) for _ in range(closers)]
    others += [threading.Thread(target=guard, args=(f,)) for f in (flusher, flusher, watcher)]
    for t in subs + others:
        t.start()
    for t in subs:
        t.join(30)
    stop.set()
    for t in others:
        t.join(30)
    blocked = sum(t.is_alive() for t in subs + others)
    return {
        "late": late,
        "negative": negative,
        "accepted": accepted,
        "errors": errors,
        "blocked": blocked,
    }


@pytest.mark.parametrize("fail_one_in", [0, 5], ids=["healthy", "flaky"])
def test_submit_close_flush_from_many_threads_keep_every_count(
    make: Make, fail_one_in: int
) -> None:
    send = FlakyTransport(fail_one_in)
    d = make(send, POLICY, max_in_flight=4)
    result = interleave(d, submitters=12, per_thread=1000, closers=2)
    assert result["errors"] == [] and result["blocked"] == 0
    assert result["negative"] == [], result["negative"][:1]
    assert result["late"] == [], "flush returned after its deadline"
    assert d.flush(10)
    s = d.stats()
    assert s["queued"] == s["in_flight"] == 0
    assert s["enqueued"] == len(result["accepted"]) > 0  # type: ignore[arg-type]
    assert s["enqueued"] == s["sent"] + s["dropped"], s  # each one accounted for once
    assert s["sent"] == len(send.sent) == len(set(send.sent))  # and sent at most once
    assert set(send.sent) <= set(result["accepted"])  # type: ignore[arg-type]


def test_with_an_outbox_nothing_accepted_is_lost(make: Make, tmp_path: Path) -> None:
    send = FlakyTransport(5)
    d = make(send, POLICY, spool_path=str(tmp_path / "o.sqlite"))
    result = interleave(d, submitters=8, per_thread=150, closers=2)
    assert result["errors"] == [] and result["blocked"] == 0
    assert result["negative"] == [] and result["late"] == []
    assert d.flush(10)
    s = d.stats()
    assert s["dropped"] == 0 and s["spooled"] == 0, s  # kept in the outbox, then sent
    assert set(send.sent) == set(result["accepted"])  # type: ignore[arg-type]


def test_close_then_submit_from_another_thread_starts_again(made: list[Backend]) -> None:
    send = FlakyTransport()
    d = make_backend(OFFLINE, send=send)  # the default policy
    made.append(d)
    assert d.submit(payment("a")) and d.state is State.RUNNING
    d.close(1)
    assert d.state is State.STOPPED
    other = threading.Thread(target=d.submit, args=(payment("b"),))
    other.start()
    other.join(5)
    assert d.flush(2) and len(send.sent) == 2 and d.state is State.RUNNING
