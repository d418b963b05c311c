"""``Settings(on_error=...)``: told of every event given up, with its reason, from the thread
that gave it up; guarded (a hook that raises is logged, at a limited rate, never raised);
compared by identity in ``Settings`` (the backend key)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pytest
from _delivery import FAST, OFFLINE, payment

from affy_middleware import AffyConfigError
from affy_middleware._errors import AffyNotFoundError, AffyRateLimitError, AffyValidationError
from affy_middleware._settings import Settings
from affy_middleware._wire import Event
from affy_middleware.delivery import Backend
from affy_middleware.delivery.sending.attempt import Attempt, Verdict
from affy_middleware.delivery.support.counters import Counters
from affy_middleware.delivery.support.logs import LogLimiter


class Hook:
    """Records ``(event id, kind, reason, thread id)`` per call; may raise."""

    def __init__(self, raises: Exception | None = None) -> None:
        self.calls: list[tuple[str, str, str, int]] = []
        self.raises = raises
        self.lock = threading.Lock()

    def __call__(self, event: Event, reason: str) -> None:
        with self.lock:
            self.calls.append((event.event_id, event.kind, reason, threading.get_ident()))
        if self.raises is not None:
            raise self.raises

    def reasons(self) -> list[str]:
        with self.lock:
            return [reason for _, _, reason, _ in self.calls]


class Sender:
    """Answers each event with ``fail(event)`` (raised) or success; ``release`` holds it."""

    def __init__(self, fail: Callable[[Event], Exception | None] = lambda e: None) -> None:
        self.fail = fail
        self.release = threading.Event()
        self.release.set()

    def __call__(self, event: Event) -> dict[str, object]:
        self.release.wait(10)
        error = self.fail(event)
        if error is not None:
            raise error
        return {"success": True}


def test_queue_full_is_told_on_the_caller_s_thread(make: Callable[..., Backend]) -> None:
    hook, send = Hook(), Sender()
    send.release.clear()  # AFFY hangs: nothing leaves the queue
    d = make(send, queue_size=2, on_error=hook)
    events = [payment(f"s{i}") for i in range(5)]
    assert [d.submit(e) for e in events] == [True, True, False, False, False]
    me = threading.get_ident()
    assert hook.calls == [(e.event_id, "payment", "queue_full", me) for e in events[2:]]
    send.release.set()
    assert d.flush(5)
    assert len(hook.calls) == 3  # the delivered ones are not given up


def test_rejected_and_expired_are_told_from_the_delivery_thread(
    make: Callable[..., Backend],
) -> None:
    hook = Hook()
    refused = AffyValidationError("bad", status_code=400, error="Bad Request")
    d = make(Sender(lambda e: refused if e.order_key == "bad" else None), on_error=hook)
    old = payment("old", created_at=time.time() - 10 * 86400)  # past the 24 h deadline
    bad, good = payment("bad"), payment("good")
    for event in (old, bad, good):
        assert d.submit(event)
    assert d.flush(5)
    told = {event_id: reason for event_id, _, reason, _ in hook.calls}
    assert told == {old.event_id: "expired", bad.event_id: "rejected"}
    assert threading.get_ident() not in {t for *_, t in hook.calls}
    assert d.stats()["sent"] == 1


def test_shutdown_drops_are_told(make: Callable[..., Backend]) -> None:
    hook, send = Hook(), Sender()
    send.release.clear()
    d = make(send, max_in_flight=1, on_error=hook)
    for i in range(5):
        d.submit(payment(f"s{i}"))
    d.close(0.3)
    dropped = d.stats()["dropped_shutdown"]
    assert dropped >= 4 and hook.reasons() == ["shutdown"] * dropped
    send.release.set()


def test_an_unknown_click_past_the_wait_is_told(  # (the attempt step, as every backend)
) -> None:
    hook = Hook()

    def unknown_click(event: Event) -> object:
        raise AffyNotFoundError("unknown click id", status_code=404)

    settings = OFFLINE.replace(click_wait=5.0, on_error=hook)
    attempt = Attempt(settings, FAST, Counters(), LogLimiter(), unknown_click)
    assert attempt.run(payment(), attempts=0, probe=False).verdict is Verdict.RETRY
    assert hook.calls == []  # waiting for its click is not giving up
    old = payment(created_at=time.time() - 6)
    assert attempt.run(old, attempts=5, probe=False).verdict is Verdict.REJECTED
    assert hook.reasons() == ["click_unknown"]


def test_sync_mode_tells_an_unsent_event_on_the_caller_s_thread(
    make: Callable[..., Backend],
) -> None:
    hook = Hook()
    d = make(
        Sender(lambda e: AffyRateLimitError("slow", retry_after=30)),
        delivery="sync",
        timeout=0.5,
        flush_timeout=0.5,
        on_error=hook,
    )
    event = payment()
    assert d.submit(event) is False
    assert hook.calls == [(event.event_id, "payment", "unsent", threading.get_ident())]


def test_a_hook_that_raises_is_logged_at_a_limited_rate_and_never_raised(
    make: Callable[..., Backend], caplog: pytest.LogCaptureFixture
) -> None:
    hook, send = Hook(raises=RuntimeError("the app's bug")), Sender()
    send.release.clear()
    d = make(send, queue_size=1, on_error=hook)
    caplog.set_level(logging.WARNING, "affy_middleware")
    assert [d.submit(payment(f"s{i}")) for i in range(4)] == [True, False, False, False]
    assert hook.reasons() == ["queue_full"] * 3
    logged = [r.getMessage() for r in caplog.records if "on_error hook raised" in r.getMessage()]
    assert len(logged) == 1 and "RuntimeError" in logged[0] and "the app's bug" not in logged[0]
    send.release.set()
    assert d.flush(5) and d.stats()["sent"] == 1


def test_settings_compare_the_hook_by_identity() -> None:
    class Loose:
        """A callable equal to every other: must not share a backend with another."""

        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = None  # type: ignore[assignment]  # unhashable: the key must not need it

        def __call__(self, event: Event, reason: str) -> None:
            pass

    first, second = Loose(), Loose()
    a, b = OFFLINE.replace(on_error=first), OFFLINE.replace(on_error=second)
    assert a != b and a != OFFLINE
    assert a == OFFLINE.replace(on_error=first) and hash(a) == hash(OFFLINE.replace(on_error=first))
    assert len({a, b, OFFLINE, OFFLINE.replace(on_error=first)}) == 3
    assert "on_error" in repr(a) and a.replace(timeout=1.0).on_error is first


def test_the_hook_comes_from_keywords_or_a_framework_config_not_the_environment() -> None:
    hook = Hook()
    with pytest.raises(AffyConfigError, match="AFFY_ON_ERROR .*callable"):
        Settings(client_id=1, on_error="mymodule.hook")  # type: ignore[arg-type]
    assert Settings.from_env({}, on_error=hook).on_error is hook
    config = {"AFFY_CLIENT_ID": 1, "AFFY_ON_ERROR": hook}
    assert Settings.from_mapping(config, environ={}).on_error is hook
    # Text in the environment cannot name a callable: the variable is not read.
    assert Settings.from_env({"AFFY_ON_ERROR": "mymodule.hook"}).on_error is None
