"""The thread backend's sender threads: each takes the next event its visit allows and
sends it through the attempt step until the outcome is final.

Up to ``max_in_flight`` daemon threads, started on demand, share one keep-alive HTTP
client (in the attempt step). A thread that finished an event sends the next event of the
same visit itself, so a visit's events go strictly one after another.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .attempt import Attempt, Verdict
from .counters import Counters
from .durable import Durable
from .logs import logger
from .queue import Generation, Item, MemoryQueue

__all__ = ["SenderPool"]


class SenderPool:
    """Starts sender threads for a ``MemoryQueue``; ``on_room`` is called (under the
    queue's lock) when memory has room again after an overflow to the outbox."""

    def __init__(
        self,
        queue: MemoryQueue,
        attempt: Attempt,
        durable: Durable,
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
                finished = False
                try:
                    finished = self._deliver(item, gen)
                finally:  # always, or flush() could wait for an item forever
                    item = self._finish(item, gen, finished)
                if item is None:
                    item = self._next(gen)
        except Exception:  # a bug of ours: say so, keep the host alive
            logger.exception("affy_middleware: delivery thread failed")
        finally:
            with self._queue.lock:
                if gen is self._queue.gen:
                    self._queue.senders -= 1

    def _next(self, gen: Generation) -> Item | None:
        with self._queue.lock:
            item, grow = self._queue.take(gen)
        for _ in range(grow):
            self.start(gen)
        return item

    def _deliver(self, item: Item, gen: Generation) -> bool:
        """Send until AFFY accepts or refuses the event, or it expires. False when the
        backend stopped first (the event is then neither sent nor dropped)."""
        event, attempt = item.event, self._attempt
        while True:
            probe = attempt.wait_turn(gen.stop)
            if probe is None:
                return False
            if item.stored and not self._durable.holds(event.event_id):
                self._counters.add("handed_over")
                attempt.end_probe(probe)
                return True  # another process took the row over: it sends it, not us
            outcome = attempt.run(event, attempts=item.attempts, probe=probe)
            item.attempts += 1
            if outcome.final:
                if item.stored:
                    self._durable.delete(event.event_id)
                return True
            if outcome.verdict is Verdict.RETRY:
                gen.stop.wait(max(0.0, outcome.at - time.monotonic()))
            # Verdict.PAUSE: the next wait_turn waits with every other sender.

    def _finish(self, item: Item, gen: Generation, finished: bool) -> Item | None:
        """Account for a finished item; the next event of its visit (sent next by this
        same thread), if any."""
        if not finished and item.stored:
            self._durable.release([item.event.event_id])
        queue = self._queue
        with queue.lock:
            if gen is not queue.gen:  # shut down meanwhile: the state was reset
                return None
            if not finished and not item.stored:
                self._counters.values["dropped_shutdown"] += 1  # (under its lock already)
            nxt = queue.finish(item, gen)
            if queue.overflow and queue.half_empty:
                self._on_room(gen)
            return nxt
