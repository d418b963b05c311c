"""``PerProcess``: one value per process, found by pid, race-free in a fresh process.
A fork is simulated by changing what ``os.getpid`` answers (as a uWSGI worker sees it:
no at-fork hook ran); real forks are in tests/delivery/test_processes.py."""

from __future__ import annotations

import os
import threading

import pytest

from affy_middleware._process import PerProcess


class Value:
    made = 0

    def __init__(self, parent: Value | None) -> None:
        Value.made += 1
        self.parent = parent


def test_one_value_per_process_and_the_parent_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    state = PerProcess(Value)
    parent = state.get()
    assert state.get() is parent
    real = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: real + 1)
    child = state.get()
    assert child is not parent and child.parent is parent and state.get() is child
    monkeypatch.setattr(os, "getpid", lambda: real)
    assert state.get() is not child  # (a pid seen again is a new process: never stale)


def test_the_first_threads_of_a_fresh_process_share_one_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = PerProcess(Value)
    state.get()
    real = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: real + 2)
    go = threading.Barrier(16)
    seen: list[Value] = []

    def first_use() -> None:
        go.wait(5)
        seen.append(state.get())

    threads = [threading.Thread(target=first_use) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(seen) == 16 and len({id(v) for v in seen}) == 1
