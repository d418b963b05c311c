"""The durations behind ``affy_delivery_seconds``: buckets, status classes, fork, listeners."""

from __future__ import annotations

import os

import pytest

from affy_middleware.delivery.support.timings import BUCKETS, Timings, status_class


@pytest.mark.parametrize(
    ("status", "klass"),
    [(200, "2xx"), (302, "3xx"), (404, "4xx"), (503, "5xx"), (None, "error"), (999, "error")],
)
def test_status_classes(status: int | None, klass: str) -> None:
    assert status_class(status) == klass


def test_durations_fall_in_cumulative_buckets_with_their_sum() -> None:
    timings = Timings()
    for seconds in (0.005, 0.01, 0.3, 30.0):  # 0.01 is in the 0.01 bucket (le: <=)
        timings.record("click", "2xx", seconds)
    timings.record("payment", "error", 5.0)
    snapshot = timings.snapshot()
    cumulative, total = snapshot["click", "2xx"]
    assert len(cumulative) == len(BUCKETS) + 1
    assert cumulative[BUCKETS.index(0.01)] == 2
    assert cumulative[BUCKETS.index(0.5)] == 3
    assert cumulative[-2] == 3 and cumulative[-1] == 4  # 30 s: only in +Inf
    assert total == pytest.approx(30.315)
    assert snapshot["payment", "error"][0][BUCKETS.index(5.0)] == 1


def test_a_listener_gets_each_duration_and_its_fault_is_contained() -> None:
    timings, heard = Timings(), []

    def broken(kind: str, klass: str, seconds: float) -> None:
        raise RuntimeError("an exporter's bug")

    timings.listeners += [broken, lambda *args: heard.append(args)]
    timings.record("registration", "4xx", 0.2)
    assert heard == [("registration", "4xx", 0.2)]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_starts_empty() -> None:
    timings = Timings()
    timings.record("click", "2xx", 0.1)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it sees, then leave at once
        try:
            seen = timings.snapshot() == {}
            timings.record("click", "2xx", 0.1)
            counted = timings.snapshot()["click", "2xx"][0][-1] == 1
            os.write(write, b"ok" if seen and counted else b"no")
        finally:
            os._exit(0)
    os.close(write)
    try:
        assert os.read(read, 2) == b"ok"
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert timings.snapshot()["click", "2xx"][0][-1] == 1  # the parent's stays
