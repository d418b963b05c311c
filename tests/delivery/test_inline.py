"""The inline backend (``AFFY_DELIVERY=sync``): sends before ``submit`` returns, a few
bounded tries through the same attempt step as the thread backend, never raises."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _delivery import Make, payment

from affy_middleware._errors import (
    AffyAuthError,
    AffyNotFoundError,
    AffyRateLimitError,
    AffyServerError,
    AffyValidationError,
)
from affy_middleware._wire import Event
from affy_middleware.delivery import Backend, InlineBackend


class Recorder:
    """A sender that records calls; ``fail(event, n)`` may return an error to raise."""

    def __init__(self, fail: Callable[[Event, int], Exception | None] | None = None) -> None:
        self.calls: list[Event] = []
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> dict[str, object]:
        with self.lock:
            self.calls.append(event)
            n = len(self.calls)
        error = self.fail(event, n) if self.fail else None
        if error is not None:
            raise error
        return {"success": True}


@pytest.fixture
def make(make: Make) -> Make:
    """The shared factory (tests/conftest.py), in sync mode."""
    return functools.partial(make, delivery="sync")


def test_sync_mode_sends_inline(make: Callable[..., Backend]) -> None:
    rec = Recorder(fail=lambda e, n: AffyServerError("x", status_code=503) if n == 1 else None)
    d = make(rec)
    assert d.submit(payment("a")) is True
    assert len(rec.calls) == 2 and isinstance(d, InlineBackend) and d.blocks
    assert d.stats()["sent"] == 1 and d.stats()["retried"] == 1


def test_sync_mode_returns_false_and_never_raises(make: Callable[..., Backend]) -> None:
    rec = Recorder(fail=lambda e, n: AffyValidationError("bad", status_code=400))
    d = make(rec)
    assert d.submit(payment()) is False
    assert d.stats()["dropped_rejected"] == 1
    rec.fail = lambda e, n: RuntimeError("a bug in a sender")
    assert d.submit(payment()) is False


def test_sync_mode_gives_up_within_its_budget(make: Callable[..., Backend]) -> None:
    rec = Recorder(fail=lambda e, n: AffyRateLimitError("slow", retry_after=30))
    d = make(rec, timeout=0.5, flush_timeout=0.5)
    start = time.monotonic()
    assert d.submit(payment()) is False
    assert time.monotonic() - start < 0.5
    assert d.stats()["dropped_unsent"] == 1
    assert d.submit(payment()) is False  # paused: not even tried
    assert len(rec.calls) == 1


def test_sync_mode_keeps_a_refused_key_s_events_in_the_outbox(
    make: Callable[..., Backend], tmp_path: Path
) -> None:
    rec = Recorder(fail=lambda e, n: AffyAuthError("bad key", status_code=401))
    d = make(rec, spool_path=str(tmp_path / "outbox.sqlite"), timeout=0.5, flush_timeout=0.5)
    assert d.submit(payment("a")) is False
    stats = d.stats()
    assert stats["dropped"] == 0 and stats["spooled"] == 1 and stats["config_errors"] >= 1
    assert stats["paused"] == 1


def test_sync_mode_retries_a_lead_refused_for_its_click_then_counts_it(
    make: Callable[..., Backend],
) -> None:
    # AFFY does not know the click yet (404) on every try: "not yet", retried within the
    # call's budget, then counted (without an outbox nothing can keep it).
    rec = Recorder(fail=lambda e, n: AffyNotFoundError("unknown click id", status_code=404))
    d = make(rec, timeout=0.2, flush_timeout=0.5)
    assert d.submit(payment()) is False
    stats = d.stats()
    assert stats["waiting_for_click"] >= 1
    assert stats["dropped_unsent"] + stats["dropped_click_unknown"] == 1
