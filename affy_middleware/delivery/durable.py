"""A backend's view of its outbox: opened on first use, errors counted and logged.

An outbox that cannot be opened or written never breaks delivery: events are then kept in
memory only (and a warning says so). Nothing here raises into a backend.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from .._settings import Settings
from .._wire import Event
from .counters import Counters
from .logs import LogLimiter, logger
from .outbox import Outbox, OutboxError, open_outbox, outbox_location

__all__ = ["Durable"]


class Durable:
    """The outbox a backend's settings name, if any. Thread-safe."""

    def __init__(self, settings: Settings, counters: Counters, log: LogLimiter, lease: float):
        self._settings = settings
        self._counters = counters
        self._log = log
        self._lease = lease
        #: Where the outbox is (for messages), or None when there is none.
        self.location = outbox_location(settings)
        self._lock = threading.Lock()
        self.outbox: Outbox | None = None
        self._failed = False

    def open(self) -> Outbox | None:
        """The outbox, opened now if need be; None when there is none or it is unusable."""
        if self.outbox is None and not self._failed and self.location is not None:
            with self._lock:  # not the queue's lock: opening may wait on the store
                if self.outbox is None and not self._failed:
                    try:
                        self.outbox = open_outbox(self._settings, lease=self._lease)
                    except OutboxError as exc:
                        self._failed = True
                        logger.error(
                            "affy_middleware: cannot open the spool %s (%s); events are kept "
                            "in memory only",
                            self.location,
                            exc,
                        )
        return self.outbox

    def put(self, event: Event, *, claimed: bool) -> bool:
        """Store the event; whether it was stored."""
        outbox = self.open()
        if outbox is None:
            return False
        try:
            outbox.put(event, claimed=claimed)
        except OutboxError as exc:
            self.failed("cannot write the spool %s: %s", self.location, exc)
            return False
        return True

    def holds(self, event_id: str) -> bool:
        outbox = self.outbox
        return outbox is None or outbox.holds(event_id)

    def delete(self, event_id: str) -> None:
        if self.outbox is not None:
            try:
                self.outbox.delete(event_id)
            except OutboxError as exc:  # it may be sent again later: AFFY dedupes by key
                self.failed("cannot update the spool: %s", exc)

    def release(self, event_ids: Iterable[str]) -> None:
        if self.outbox is not None:
            try:
                self.outbox.release(event_ids)
            except OutboxError:  # the lease expires anyway
                logger.debug("affy_middleware: cannot release spool rows", exc_info=True)

    def count(self) -> int:
        if self.outbox is None:
            return 0
        try:
            return self.outbox.count()
        except OutboxError:
            return 0

    def failed(self, message: str, *args: object) -> None:
        """Count an outbox error and say so (rate-limited)."""
        self._counters.add("spool_errors")
        self._log.warn("spool", message, *args)
