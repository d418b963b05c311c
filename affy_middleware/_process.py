"""State that belongs to one process, found by pid: what makes forks safe without hooks.

uWSGI (and any server that forks in C) copies the parent's memory without running
Python's ``os.register_at_fork`` hooks, so nothing can rely on them to renew what is per
process: event ids, queues, locks, HTTP clients. A :class:`PerProcess` value is therefore
looked up by comparing one pid, and the first use in a new process makes that process's
own value. Two threads of a fresh worker may get there at once: the new value is
published with one ``dict.setdefault`` (atomic under the GIL), so both get the same one,
and no lock inherited from the parent is ever taken.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["PerProcess"]

T = TypeVar("T")


class _Slot(Generic[T]):
    """One process's value, and the values of the processes forked from it (a child
    looks for its own in its parent's slot, in its own copy of the memory)."""

    __slots__ = ("pid", "value", "forks", "parent")

    def __init__(self, pid: int, value: T, parent: _Slot[T] | None) -> None:
        self.pid = pid
        self.value = value
        #: Filled only in a child's copy of memory: in the process that owns this slot it
        #: stays empty, so a pid reused by a later fork can never find a stale value.
        self.forks: dict[int, _Slot[T]] = {}
        #: Keeps the parent's value (its HTTP client, its outbox handle) alive and never
        #: closed in the child: their sockets and locks are the parent's.
        self.parent = parent


class PerProcess(Generic[T]):
    """A value made once per process: ``make(parent_value)`` in a forked child, where
    ``parent_value`` is the value the parent had (None the first time)::

        ids = PerProcess(lambda parent: IdSource())
        ids.get()     # this process's IdSource; a new one after any fork

    ``make`` must not have side effects: two threads may both call it, one result wins.
    """

    __slots__ = ("_make", "slot")

    def __init__(self, make: Callable[[T | None], T]) -> None:
        self._make = make
        #: The current process's slot (``get`` checks its pid).
        self.slot: _Slot[T] = _Slot(os.getpid(), make(None), None)

    def get(self) -> T:
        slot = self.slot
        if slot.pid == os.getpid():
            return slot.value
        return self.renew()

    def renew(self) -> T:
        """This process's value, made now if this is its first use after a fork."""
        slot, pid = self.slot, os.getpid()
        if slot.pid == pid:  # another thread of this process renewed it meanwhile
            return slot.value
        mine = slot.forks.get(pid)
        if mine is None:
            mine = slot.forks.setdefault(pid, _Slot(pid, self._make(slot.value), slot))
        self.slot = mine
        return mine.value

    def peek(self) -> T:
        """The value of the process that last used it (no pid check): for a parent's
        fork hooks, which run before the child exists."""
        return self.slot.value
