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
from collections.abc import Callable

from ..outbox.guarded import GuardedOutbox
from ..sending.attempt import Attempt, Verdict
from ..support.counters import Counters
from ..support.logs import log_fields, logger
from .queue import Generation, Item, MemoryQueue

__all__ = ["SenderPool"]


class SenderPool:
    """Starts sender threads for a ``MemoryQueue``; ``on_room`` is called (under the
    queue's lock) when memory has room again after an overflow to the outbox."""

    def __init__(
        self,
        queue: MemoryQueue,
        attempt: Attempt,
        durable: GuardedOutbox,
        counters: Counters,
        on_room: Callable[[Generation], None],
    ) -> None:
        self._queue = queue
        self._attempt = attempt
        self._durable = durable
        self._counters = counters
        self._on_room = on_room

    def start(self, gen: Generation) -> None:
        """Start one sender thread; the queue's ``senders`` was counted already."""
        thread = threading.Thread(target=self._run, args=(gen,), name="affy-sender", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # interpreter shutting down
            with self._queue.lock:
                if gen is self._queue.gen:
                    self._queue.senders -= 1
            return
        gen.threads.append(thread)

    def _run(self, gen: Generation) -> None:
        try:
            item = self._next(gen)
            while item is not None:
                finished, park_at = False, None
                try:
                    finished, park_at = self._deliver(item, gen)
                finally:  # always, or flush() could wait for an item forever
                    if park_at is not None:
                        item = self._park(item, gen, park_at)
                    else:
                        item = self._finish(item, gen, finished)
                if item is None:
                    item = self._next(gen)
        except Exception:  # a bug of ours: say so, keep the host alive
            logger.exception(
                "affy_middleware: delivery thread failed", extra=log_fields(reason="internal_error")
            )
        finally:
            with self._queue.lock:
                if gen is self._queue.gen:
                    self._queue.senders -= 1

    def _next(self, gen: Generation) -> Item | None:
        queue = self._queue
        with queue.lock:
            item, grow = queue.take(gen)
            if item is not None and grow == 0 and queue.idle == 0:
                # No sender left waiting: keep a spare (up to max_in_flight), so that
                # events submitted while this one is slow or stuck get a thread at once.
                grow = int(queue.senders < self._attempt.settings.max_in_flight)
                queue.senders += grow
        for _ in range(grow):
            self.start(gen)
        return item

    def _deliver(self, item: Item, gen: Generation) -> tuple[bool, float | None]:
        """Send until AFFY accepts or refuses the event, or it expires: (True, None).
        (False, None) when the backend stopped first (the event is then neither sent nor
        dropped); (False, T) when the event alone must try again at T: it is parked, and
        this thread moves on to other visits."""
        event, attempt = item.event, self._attempt
        while True:
            probe = attempt.wait_turn(gen.stop)
            if probe is None:
                return False, None
            if item.stored and not self._durable.holds(event.event_id):
                self._counters.add("handed_over")
                attempt.end_probe(probe)
                return True, None  # another process took the row over: it sends it, not us
            outcome = attempt.run(event, attempts=item.attempts, probe=probe)
            item.attempts += 1
            if outcome.final:
                if item.stored:
                    self._durable.finish(event, outcome)
                else:  # in memory only: a write cut off may have left its row after all
                    self._durable.forget(event.event_id)
                return True, None
            if outcome.verdict is Verdict.RETRY:
                return False, outcome.at
            # Verdict.PAUSE: the next wait_turn waits with every other sender.

    def _park(self, item: Item, gen: Generation, at: float) -> Item | None:
        """Park ``item`` until ``at`` (a sender takes it again then)."""
        queue = self._queue
        with queue.lock:
            if gen is queue.gen and not gen.stop.is_set():
                queue.order.park(item, at)
                queue.work.notify()  # an idle sender may have to wake earlier now
                return None
        return self._finish(item, gen, False)  # stopping: as any unsent event

    def _finish(self, item: Item, gen: Generation, finished: bool) -> Item | None:
        """Account for a finished item; the next event of its visit (sent next by this
        same thread), if any."""
        if not finished and item.stored:
            self._durable.release([item.event.event_id])
        queue = self._queue
        dropped = False
        with queue.lock:
            if gen is not queue.gen:  # shut down meanwhile: the state was reset
                return None
            if not finished and not item.stored:
                self._counters.finish_locked("dropped_shutdown", item.event.kind)  # (lock held)
                dropped = True
            nxt = queue.finish(item, gen)
            if queue.overflow and queue.half_empty:
                self._on_room(gen)
        if dropped:
            self._attempt.gave_up(item.event, "shutdown")
        return nxt
