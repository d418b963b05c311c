"""The threads one process started for one thread backend (senders, the lease keeper)
and the ``stop`` they all watch.

One per process, never replaced: a shutdown sets ``stop``, joins the threads (bounded),
forgets those that ended and clears ``stop`` again; a thread that outlives the join goes
on and is joined by a later shutdown. ``keeper`` changes under the queue's lock.
"""

from __future__ import annotations

import threading
import time

from ..outbox.keeper import LeaseKeeper

__all__ = ["Threads"]


class Threads:
    """A process's delivery threads, their ``stop``, and its lease keeper (if started)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        #: Threads started and not yet found ended by a shutdown.
        self.started: list[threading.Thread] = []
        self.keeper: LeaseKeeper | None = None

    def add(self, thread: threading.Thread) -> None:
        """Remember a thread that was just started (for the next shutdown to join)."""
        self.started.append(thread)

    def wake_keeper(self) -> None:
        """Have the keeper look at the outbox now (memory has room again, or a request
        waits for the outbox to open)."""
        keeper = self.keeper
        if keeper is not None:
            keeper.wake.set()

    def keeper_ended(self) -> bool:
        """Whether the keeper's thread ended while nothing stops it (it saw the ``stop`` of
        a shutdown that raced with a submit): it must be started again."""
        keeper = self.keeper
        return keeper is not None and not self.stop.is_set() and not keeper.thread.is_alive()

    def forget_ended_keeper(self) -> None:
        """Forget a keeper whose thread ended (it saw a shutdown's ``stop``): a new one
        may start. Under the queue's lock."""
        keeper = self.keeper
        if keeper is not None and not keeper.thread.is_alive():
            self.keeper = None

    def join(self, end: float) -> None:
        """Wait for every started thread to end, until ``end`` (``time.monotonic``)."""
        for thread in list(self.started):
            thread.join(max(0.0, end - time.monotonic()))

    def reap(self) -> bool:
        """Forget the threads that ended; whether any still runs. Under the queue's lock."""
        for thread in [t for t in self.started if not t.is_alive()]:
            self.started.remove(thread)  # (in place: a sender may be appended meanwhile)
        self.forget_ended_keeper()
        return bool(self.started)
