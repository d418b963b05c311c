"""The thread backend's sender threads: each takes the next event its visit allows and
sends it through the attempt step until the outcome is final. An event that must try
again later (a backoff, a lead waiting for its click) is parked in the visit order until
its time, so a waiting visit never holds a thread that other visits need.

Up to ``max_in_flight`` daemon threads, started on demand, share one keep-alive HTTP
client (in the attempt step). A thread that finished an event sends the next event of the
same visit itself, so a visit's events go strictly one after another.
"""

from __future__ import annotations

import threading

from ..outbox.guarded import GuardedOutbox
from ..sending.attempt import Attempt, Verdict
from ..support.counters import Counters
from ..support.logs import log_fields, logger
from .queue import Item, MemoryQueue
from .threads import Threads

__all__ = ["SenderPool"]


class SenderPool:
    """Starts sender threads for a ``MemoryQueue`` (kept in ``threads``, stopped by its
    ``stop``). A sender that finds memory half empty after an overflow to the outbox wakes
    the lease keeper, which brings the waiting events in."""

    def __init__(
        self,
        queue: MemoryQueue,
        threads: Threads,
        attempt: Attempt,
        durable: GuardedOutbox,
        counters: Counters,
    ) -> None:
        self._queue = queue
        self._threads = threads
        self._attempt = attempt
        self._durable = durable
        self._counters = counters

    def start(self) -> None:
        """Start one sender thread; the queue's ``senders`` was counted already."""
        thread = threading.Thread(target=self._run, name="affy-sender", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # interpreter shutting down
            with self._queue.lock:
                self._queue.sender_ended()
            return
        self._threads.add(thread)

    def _run(self) -> None:
        try:
            item = self._next()
            while item is not None:
                finished, park_at = False, None
                try:
                    finished, park_at = self._deliver(item)
                finally:  # always, or flush() could wait for an item forever
                    if park_at is not None:
                        item = self._park(item, park_at)
                    else:
                        item = self._finish(item, finished)
                if item is None:
                    item = self._next()
        except Exception:  # a bug of ours: say so, keep the host alive
            logger.exception(
                "affy_middleware: delivery thread failed", extra=log_fields(reason="internal_error")
            )
        finally:
            with self._queue.lock:
                self._queue.sender_ended()

    def _next(self) -> Item | None:
        """The next event to send (None once stopping), starting the threads the queue
        asks for (counted already: more waiting than idle threads, or a spare)."""
        queue = self._queue
        with queue.lock:
            item, grow = queue.take(self._threads.stop)
        for _ in range(grow):
            self.start()
        return item

    def _deliver(self, item: Item) -> tuple[bool, float | None]:
        """Send until AFFY accepts or refuses the event, or it expires: (True, None).
        (False, None) when the backend stopped first (the event is then neither sent nor
        dropped); (False, T) when the event alone must try again at T: it is parked, and
        this thread moves on to other visits."""
        event, attempt = item.event, self._attempt
        while True:
            probe = attempt.wait_turn(self._threads.stop)
            if probe is None:
                return False, None
            if item.stored and not self._durable.holds(event.event_id):
                self._counters.add("handed_over")
                attempt.end_probe(probe)
                return True, None  # another process took the row over: it sends it, not us
            outcome = attempt.run(event, attempts=item.attempts, probe=probe)
            item.attempts += 1
            if outcome.final:
                with self._queue.lock:  # from now on a late write of its row deletes it
                    item.answered = True
                    stored = item.stored
                if stored:
                    self._durable.finish(event, outcome)
                else:  # in memory only: a write cut off may have left its row after all
                    self._durable.forget(event.event_id)
                return True, None
            if outcome.verdict is Verdict.RETRY:
                return False, outcome.at
            # Verdict.PAUSE: the next wait_turn waits with every other sender.

    def _park(self, item: Item, at: float) -> Item | None:
        """Park ``item`` until ``at`` (a sender takes it again then)."""
        queue = self._queue
        with queue.lock:
            if not self._threads.stop.is_set():
                queue.park(item, at)
                return None
        return self._finish(item, False)  # stopping: as any unsent event

    def _finish(self, item: Item, finished: bool) -> Item | None:
        """Account for a finished item; the next event of its visit (sent next by this
        same thread), if any."""
        if not finished and item.stored:
            self._durable.release([item.event.event_id])
        queue = self._queue
        dropped = False
        with queue.lock:
            if not finished and not item.stored:
                self._counters.finish_locked("dropped_shutdown", item.event.kind)  # (lock held)
                dropped = True
            nxt = queue.finish(item)
            if queue.overflow and queue.half_empty:
                self._threads.wake_keeper()
        if dropped:
            self._attempt.gave_up(item.event, "shutdown")
        return nxt
