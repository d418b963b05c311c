"""Concurrent calls coalesced into one round trip (a group commit).

A relay's sender threads each delete their row once AFFY accepted it, through the one
connection of their process: one statement each, waiting in line for the connection. A
:class:`Batch` lets whoever arrives while a statement runs join the next one, which one
of them then runs for all. Alone, a caller runs its own at once (no wait, no timer); under
load, N callers cost one round trip instead of N. Each caller returns only once its item
is done (or raises its batch's error), so callers see the same behaviour as a direct call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Batch"]

K = TypeVar("K")


class _Group(Generic[K]):
    __slots__ = ("items", "done", "error")

    def __init__(self) -> None:
        self.items: list[K] = []
        self.done = False
        self.error: BaseException | None = None


class Batch(Generic[K]):
    """``batch(item)`` runs ``run(items)`` for ``item`` and whatever other items were
    submitted meanwhile; returns when it ran, raises what it raised::

        delete = Batch(lambda ids: db.execute("DELETE ... WHERE id = ANY(%s)", (ids,)))
        delete("e1")   # from many threads at once: few statements
    """

    def __init__(self, run: Callable[[list[K]], object]) -> None:
        self._run = run
        self._cond = threading.Condition(threading.Lock())
        self._open: _Group[K] = _Group()  # gathering: the next to run
        self._running = False

    def __call__(self, item: K) -> None:
        with self._cond:
            group = self._open
            group.items.append(item)
            # While a group runs, ours gathers; when none runs, ours is the open one
            # (a group is marked done before the next may start), and we run it.
            while not group.done and self._running:
                self._cond.wait()
            if group.done:
                if group.error is not None:
                    raise _copy(group.error)
                return
            self._running = True
            self._open = _Group()
        error: BaseException | None = None
        try:
            self._run(group.items)
        except BaseException as exc:
            error = exc
        with self._cond:
            group.done, group.error = True, error
            self._running = False
            self._cond.notify_all()
        if error is not None:
            raise error


def _copy(error: BaseException) -> BaseException:
    """The error for another thread of the group: same type and message, its own
    traceback (one exception object raised in several threads would share one)."""
    try:
        return type(error)(*error.args)
    except Exception:  # an exception type with another signature: the object itself
        return error
