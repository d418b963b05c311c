"""The lease keeper: one thread per process that keeps the outbox's promises.

It renews this process's leases (every quarter of a lease) and, about once a second or
when woken, asks the backend to take rows over: left by an earlier process at start-up,
written to the outbox only while memory was full, or held by a process that died.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..logs import logger
from . import Outbox, OutboxError

__all__ = ["CLAIM_INTERVAL", "LeaseKeeper"]

#: Seconds between two looks at the outbox for rows to take over.
CLAIM_INTERVAL = 1.0


class LeaseKeeper:
    """Runs ``refill`` (move claimable rows into memory) and lease renewal until ``stop``.

    ``on_error`` hears of every ``OutboxError``; the keeper carries on after one."""

    def __init__(
        self,
        outbox: Outbox,
        refill: Callable[[], object],
        on_error: Callable[[OutboxError], None],
        stop: threading.Event,
    ) -> None:
        self._outbox = outbox
        self._refill = refill
        self._on_error = on_error
        self._stop = stop
        #: Set to look at the outbox now rather than at the next interval.
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self._run, name="affy-spool", daemon=True)

    def _run(self) -> None:
        outbox, stop = self._outbox, self._stop
        next_renew = time.monotonic() + outbox.lease / 4
        while not stop.is_set():
            try:
                if time.monotonic() >= next_renew:
                    outbox.renew()
                    next_renew = time.monotonic() + outbox.lease / 4
                self._refill()
            except OutboxError as exc:
                self._on_error(exc)
            except Exception:
                logger.exception("affy_middleware: spool thread failed")
                return
            self.wake.wait(CLAIM_INTERVAL)
            self.wake.clear()
