"""The thread backend's rules, with an injected sender (no network): acceptance and bounds,
per-visit order, parallelism, retries, the pipeline pause, bounded flush/close, fork
handling. The same behaviour over real HTTP is in test_sandbox.py."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import pytest
from _delivery import fast_policy, payment

from affy_middleware._errors import (
    AffyNetworkError,
    AffyRateLimitError,
    AffyServerError,
    AffyValidationError,
)
from affy_middleware._settings import Settings
from affy_middleware._wire import Event
from affy_middleware.delivery import Backend, OffBackend, State
from affy_middleware.delivery.sending.breaker import RetryPolicy


class Recorder:
    """A sender that records calls; ``fail`` decides per call whether to raise."""

    def __init__(
        self,
        fail: Callable[[Event, int], Exception | None] | None = None,
        delay: float = 0.0,
    ) -> None:
        self.calls: list[tuple[float, Event]] = []
        self.fail = fail
        self.delay = delay
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        self.release = threading.Event()
        self.release.set()

    def __call__(self, event: Event) -> dict[str, object]:
        with self.lock:
            self.calls.append((time.monotonic(), event))
            n = len(self.calls)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            self.release.wait(10)
            if self.delay:
                threading.Event().wait(self.delay)  # stands in for network latency
            error = self.fail(event, n) if self.fail else None
            if error is not None:
                raise error
            return {"success": True}
        finally:
            with self.lock:
                self.active -= 1

    @property
    def events(self) -> list[Event]:
        return [event for _, event in self.calls]


def test_delivers_each_event_once_and_counts(make: Callable[..., Backend]) -> None:
    rec = Recorder()
    d = make(rec)
    events = [payment(f"s{i}") for i in range(50)]
    assert all(d.submit(e) for e in events)
    assert d.flush(5)
    assert sorted(e.event_id for e in rec.events) == sorted(e.event_id for e in events)
    s = d.stats()
    assert (s["enqueued"], s["sent"], s["dropped"], s["queued"], s["in_flight"]) == (
        50,
        50,
        0,
        0,
        0,
    )
    for key in (
        "retried",
        "failed",
        "dropped_queue_full",
        "dropped_rejected",
        "dropped_expired",
        "spooled",
    ):
        assert s[key] == 0


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"client_id": None}, id="no-client-id"),
        pytest.param({"enabled": False}, id="disabled"),
        pytest.param({"delivery": "off"}, id="delivery-off"),
    ],
)
def test_inactive_settings_accept_nothing(
    make: Callable[..., Backend], changes: dict[str, object]
) -> None:
    rec = Recorder()
    d = make(rec, **changes)
    assert d.submit(payment()) is False
    assert d.flush(1)
    assert rec.calls == []
    assert d.stats()["enqueued"] == 0
    assert isinstance(d, OffBackend)  # no thread started for nothing


def test_worker_starts_lazily(make: Callable[..., Backend]) -> None:
    rec = Recorder()
    d = make(rec)
    assert d.threads == []
    d.submit(payment())
    # One sender, and a spare one may start as soon as the first takes the event.
    assert 1 <= len(d.threads) <= 2 and all(t.daemon for t in d.threads)
    assert d.flush(2)


def test_queue_bound_by_count_drops_and_logs_once(
    make: Callable[..., Backend], caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()
    rec.release.clear()  # AFFY hangs: nothing leaves the queue
    d = make(rec, queue_size=5)
    caplog.set_level(logging.WARNING, "affy_middleware")
    results = [d.submit(payment(f"s{i}")) for i in range(12)]
    assert results == [True] * 5 + [False] * 7
    s = d.stats()
    assert s["dropped_queue_full"] == 7 and s["dropped"] == 7
    assert s["queued"] + s["in_flight"] == 5
    assert len([r for r in caplog.records if "queue is full" in r.getMessage()]) == 1
    rec.release.set()
    assert d.flush(5)
    assert len(rec.calls) == 5


def test_queue_bound_by_bytes(make: Callable[..., Backend]) -> None:
    rec = Recorder()
    rec.release.clear()
    d = make(rec, queue_bytes=5000)  # room for two events of ~2.2 kB
    big = Event(kind="click", body={"clientId": 1, "userAgent": "x" * 1500}, order_key="v")
    assert d.submit(big) and d.submit(Event(kind="click", body=dict(big.body)))
    assert d.submit(Event(kind="click", body=dict(big.body))) is False
    assert d.stats()["dropped_queue_full"] == 1
    rec.release.set()
    assert d.flush(5)


def test_enqueue_never_raises(make: Callable[..., Backend]) -> None:
    d = make(Recorder())
    broken = Event(kind="click", body=None)  # type: ignore[arg-type]
    assert d.submit(broken) is False


def test_per_visit_order_with_parallel_visits(make: Callable[..., Backend]) -> None:
    rec = Recorder(delay=0.005)
    d = make(rec, max_in_flight=4)
    sent_order: list[Event] = []
    for step in range(5):
        for visit in range(8):
            event = Event(kind="click", body={"step": step, "visit": visit}, order_key=f"v{visit}")
            sent_order.append(event)
            assert d.submit(event)
    assert d.flush(10)
    for visit in range(8):
        steps = [e.body["step"] for e in rec.events if e.body["visit"] == visit]
        assert steps == [0, 1, 2, 3, 4]
    assert 1 < rec.max_active <= 4


def test_same_visit_never_in_flight_twice(make: Callable[..., Backend]) -> None:
    in_flight: set[str] = set()
    overlap: list[str] = []
    lock = threading.Lock()

    def fail(event: Event, n: int) -> Exception | None:
        return None

    class Checking(Recorder):
        def __call__(self, event: Event) -> dict[str, object]:
            with lock:
                if event.order_key in in_flight:
                    overlap.append(str(event.order_key))
                in_flight.add(str(event.order_key))
            try:
                return super().__call__(event)
            finally:
                with lock:
                    in_flight.discard(str(event.order_key))

    rec = Checking(fail=fail, delay=0.002)
    d = make(rec, max_in_flight=8)
    for i in range(60):
        d.submit(Event(kind="click", body={"i": i}, order_key=f"v{i % 3}"))
    assert d.flush(10)
    assert overlap == []
    assert len(rec.calls) == 60


def test_retries_with_the_same_event_then_succeeds(make: Callable[..., Backend]) -> None:
    errors = [AffyNetworkError("refused"), AffyServerError("boom", status_code=502)]
    rec = Recorder(fail=lambda e, n: errors[n - 1] if n <= len(errors) else None)
    d = make(rec)
    event = payment()
    assert d.submit(event)
    assert d.flush(5)
    assert [e.event_id for e in rec.events] == [event.event_id] * 3  # same Idempotency-Key
    s = d.stats()
    assert (s["sent"], s["retried"], s["failed"], s["dropped"]) == (1, 2, 2, 0)


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(
            AffyValidationError("sessionId is required", status_code=400, error="Bad Request"),
            id="400",
        ),
        pytest.param(AffyValidationError("no", status_code=422, error="Unprocessable"), id="422"),
    ],
)
def test_4xx_is_dropped_counted_logged_once_and_the_queue_moves_on(
    make: Callable[..., Backend], caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    bad = {"bad1", "bad2", "bad3"}
    rec = Recorder(fail=lambda e, n: error if e.order_key in bad else None)
    d = make(rec)
    caplog.set_level(logging.WARNING, "affy_middleware")
    for key in ["bad1", "ok1", "bad2", "ok2", "bad3", "ok3"]:
        d.submit(payment(key))
    assert d.flush(5)
    assert len(rec.calls) == 6  # never retried
    s = d.stats()
    assert (s["sent"], s["dropped_rejected"], s["retried"]) == (3, 3, 0)
    logged = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(logged) == 1 and error.message in logged[0]  # type: ignore[attr-defined]


def test_events_older_than_the_deadline_are_given_up(make: Callable[..., Backend]) -> None:
    rec = Recorder()
    d = make(rec, retry_deadline=1.0)
    old = payment(created_at=time.time() - 5)
    d.submit(old)
    d.submit(payment("fresh"))
    assert d.flush(5)
    assert [e.order_key for e in rec.events] == ["fresh"]
    assert d.stats()["dropped_expired"] == 1


def test_retry_after_holds_back_every_request(make: Callable[..., Backend]) -> None:
    rec = Recorder(
        fail=lambda e, n: AffyRateLimitError("slow", retry_after=0.6) if n == 1 else None
    )
    d = make(rec, max_in_flight=1)
    for i in range(4):
        d.submit(payment(f"s{i}"))
    assert d.flush(5)
    times = [t for t, _ in rec.calls]
    assert len(times) == 5
    assert min(times[1:]) - times[0] >= 0.6


def test_outage_pauses_the_whole_pipeline(make: Callable[..., Backend]) -> None:
    down = threading.Event()
    down.set()
    rec = Recorder(
        fail=lambda e, n: AffyServerError("down", status_code=503) if down.is_set() else None
    )
    policy = fast_policy(base=0.1, cap=0.4, min_pause=0.05)
    d = make(rec, policy, max_in_flight=8)
    for i in range(40):
        d.submit(payment(f"s{i}"))
    assert d.flush(1.5) is False  # AFFY is down for this whole window
    during = len(rec.calls)
    # Without the pause: 8 threads x (1.5 s / ~0.1 s backoff) = 100+ requests.
    assert during <= 8 + 2 + 1.5 / 0.05
    assert d.stats()["pauses"] >= 1
    down.clear()
    assert d.flush(5)
    assert d.stats()["sent"] == 40
    assert len({e.event_id for e in rec.events}) == 40


def test_flush_and_shutdown_are_bounded_when_affy_hangs(
    make: Callable[..., Backend], caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()
    rec.release.clear()
    d = make(rec, max_in_flight=1)  # one call hangs, the others wait behind it
    for i in range(5):
        d.submit(payment(f"s{i}"))
    start = time.monotonic()
    assert d.flush(0.3) is False
    d.close(0.3)
    assert time.monotonic() - start < 1.5
    assert d.stats()["dropped_shutdown"] >= 4  # the one in flight belongs to its thread
    assert any("not delivered at shutdown" in r.getMessage() for r in caplog.records)
    rec.release.set()


def test_shutdown_interrupts_a_backoff(make: Callable[..., Backend]) -> None:
    slow = RetryPolicy(base=30.0, cap=30.0, failure_threshold=100)
    rec = Recorder(
        fail=lambda e, n: AffyServerError("x", status_code=500),
    )
    d = make(rec, slow)
    d.submit(payment())
    thread = d.threads[0]
    assert d.flush(0.2) is False  # now in its 0-30 s backoff (or retrying)
    start = time.monotonic()
    d.close(0.3)
    thread.join(2.0)
    assert not thread.is_alive() and time.monotonic() - start < 1.0


def test_enqueue_after_shutdown_starts_again(make: Callable[..., Backend]) -> None:
    rec = Recorder()
    d = make(rec)
    d.submit(payment("a"))
    d.close(2)
    assert d.submit(payment("b"))
    assert d.flush(2)
    assert [e.order_key for e in rec.events] == ["a", "b"]


def test_lifecycle(make: Callable[..., Backend]) -> None:
    d = make(Recorder())
    assert d.state is State.IDLE
    assert d.submit(payment("a")) and d.state is State.RUNNING
    d.close(2)
    assert d.state is State.STOPPED
    assert d.submit(payment("b")) and d.state is State.RUNNING  # starts again
    d.close(2, final=True)
    assert d.state is State.CLOSED
    assert d.submit(payment("c")) is False and d.stats()["sent"] == 2


def test_close_while_other_threads_submit_and_flush(make: Callable[..., Backend]) -> None:
    # close() empties the queue but keeps its lock and conditions: threads that submit or
    # flush meanwhile (a request, a teardown flush) carry on, and nobody waits forever.
    rec = Recorder(delay=0.001)
    d = make(rec, max_in_flight=4)
    stop = threading.Event()

    def submitter(n: int) -> None:
        i = 0
        while not stop.is_set():
            d.submit(payment(f"t{n}-{i % 5}"))
            i += 1

    def flusher() -> None:
        while not stop.is_set():
            d.flush(0.05)

    threads = [threading.Thread(target=submitter, args=(n,)) for n in range(3)]
    threads.append(threading.Thread(target=flusher))
    for t in threads:
        t.start()
    for _ in range(5):
        d.close(0.2)
    stop.set()
    for t in threads:
        t.join(5)
    assert not any(t.is_alive() for t in threads)
    assert d.flush(5)
    s = d.stats()
    assert s["enqueued"] > 0 and s["queued"] == s["in_flight"] == 0
    assert s["enqueued"] == s["sent"] + s["dropped_shutdown"]  # each one accounted for once


def test_pid_check_resets_state_when_fork_hooks_did_not_run(
    make: Callable[..., Backend], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fork made outside Python's os.fork (uWSGI forking its workers in C) runs no at-fork
    # hook: submit notices the new pid and starts from a fresh, empty state of its own,
    # and the ids drawn from then on are the new process's.
    rec = Recorder()
    rec.release.clear()
    d = make(rec)
    for i in range(3):
        d.submit(payment(f"parent{i}"))
    old_threads, parent_id = d.threads, payment().event_id
    real = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: real + 100_000)  # as seen from a child
    child = payment("child")
    assert child.event_id[:16] != parent_id[:16]  # another process's id prefix
    assert d.submit(child)
    assert d.stats()["enqueued"] == 1 and d.threads is not old_threads
    rec.release.set()
    assert d.flush(5)
    assert "child" in [e.order_key for e in rec.events]
    monkeypatch.undo()
    old_threads[0].join(5)


def test_two_threads_of_a_fresh_process_share_one_state(
    make: Callable[..., Backend], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first submits of a fresh uWSGI worker may come from two threads at once: both
    # must land in the same queue, or one's events would vanish uncounted.
    rec = Recorder()
    d = make(rec, max_in_flight=8)
    real = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: real + 200_000)
    start = threading.Barrier(8)

    def first_requests(n: int) -> None:
        start.wait(5)
        for i in range(20):
            d.submit(payment(f"t{n}-{i}"))

    threads = [threading.Thread(target=first_requests, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert d.flush(5)
    assert d.stats()["enqueued"] == d.stats()["sent"] == 160
    assert len({e.event_id for e in rec.events}) == 160


def test_a_fork_waits_for_http_calls_in_progress(make: Callable[..., Backend]) -> None:
    rec = Recorder()
    rec.release.clear()
    d = make(rec)
    d.submit(payment())
    assert d.flush(0.1) is False  # the call is now in progress
    threading.Timer(0.2, rec.release.set).start()
    start = time.monotonic()
    d.before_fork()  # returns once the call ended (at most FORK_WAIT)
    waited = time.monotonic() - start
    d.after_fork_in_parent()
    assert 0.1 < waited < 1.5
    assert d.flush(2)


def test_warns_once_when_the_sender_thread_never_runs(
    make: Callable[..., Backend],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A server that never lets Python threads run (uWSGI without threads, on some builds):
    # the sender is started but never looks for work. Said once, and only then.
    from affy_middleware.delivery.threaded import process as pipeline
    from affy_middleware.delivery.threaded.senders import SenderPool

    monkeypatch.setattr(SenderPool, "start", lambda self: None)  # started, never runs
    monkeypatch.setattr(pipeline, "STARVED_AFTER", 0.05)
    d = make(Recorder())
    d.submit(payment("a"))
    assert d.flush(0.1) is False
    assert d.flush(0.1) is False
    lines = [r for r in caplog.records if "--enable-threads" in r.getMessage()]
    assert len(lines) == 1 and "has not run" in lines[0].getMessage()


def test_no_thread_warning_when_the_sender_ran(
    make: Callable[..., Backend],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from affy_middleware.delivery.threaded import process as pipeline

    monkeypatch.setattr(pipeline, "STARVED_AFTER", 0.0)
    d = make(Recorder())
    d.submit(payment("a"))
    assert d.flush(2)
    d.submit(payment("b"))
    assert d.flush(2)
    assert not [r for r in caplog.records if "--enable-threads" in r.getMessage()]


def test_retry_after_as_an_http_date_is_honoured(make: Callable[..., Backend]) -> None:
    # Through the real client (its Retry-After parsing), over an in-memory transport.
    import email.utils

    import httpx

    from affy_middleware import AffyClient

    seen: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(time.monotonic())
        if len(seen) == 1:
            when = email.utils.formatdate(time.time() + 2, usegmt=True)  # whole seconds
            return httpx.Response(
                429,
                headers={"Retry-After": when},
                json={"error": "Too Many Requests", "message": "slow down"},
            )
        return httpx.Response(201, json={"success": True, "leadId": 1})

    settings = Settings(client_id=1, api_url="http://127.0.0.1:9")
    client = AffyClient(settings, transport=httpx.MockTransport(handler))
    d = make(client.send_event, max_in_flight=1)
    d.submit(payment("a"))
    d.submit(payment("b"))
    assert d.flush(6)
    client.close()
    assert len(seen) == 3 and seen[1] - seen[0] >= 1.0  # the date's second, at least
    assert d.stats()["sent"] == 2
