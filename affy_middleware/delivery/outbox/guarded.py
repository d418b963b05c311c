"""A backend's view of its outbox: opened off the request path, errors counted and logged.

An outbox that cannot be opened or written never breaks delivery: events are then kept in
memory only (counted in ``spool_errors``, logged at a limited rate), and opening is tried
again later (the lease keeper retries with backoff, and each ``submit`` asks for one more
try, waiting for it at most ``OPEN_WAIT``). Nothing here raises into a backend.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TypeAlias

from ..._settings import Settings
from ..._wire import Event
from ..sending.attempt import Outcome, Verdict
from ..sending.hook import ErrorHook
from ..sending.refusals import redacted
from ..support.counters import Counters
from ..support.logs import LogLimiter, logger
from . import (
    MALFORMED,
    Outbox,
    OutboxBusy,
    OutboxError,
    OutboxUncertain,
    load_store,
    open_outbox,
    outbox_location,
)

__all__ = ["MAX_OWED", "OPEN_WAIT", "GuardedOutbox"]

#: Seconds a request thread waits for the outbox to open (the SQLite busy timeout, the
#: same bound as a write's wait).
OPEN_WAIT = 2.0
#: Outbox writes owed at most (a delete or a dead letter the store refused, retried at
#: each look at the outbox). Past it the oldest is given up: its row's lease runs out and
#: another process sends it again, with the same Idempotency-Key.
MAX_OWED = 10_000
#: What is owed for one row: ``None`` for its delete (AFFY accepted it), else the dead
#: letter's (reason, answer).
Owed: TypeAlias = "tuple[str, str | None] | None"


class GuardedOutbox:
    """The outbox a backend's settings name, if any. Thread-safe."""

    def __init__(self, settings: Settings, counters: Counters, log: LogLimiter, lease: float):
        self._settings = settings
        self._counters = counters
        self._log = log
        self._lease = lease
        #: Where the outbox is (for messages), or None when there is none.
        self.location = outbox_location(settings)
        if self.location is not None:
            load_store(settings)  # here, not in the thread that opens it (forks)
        self._lock = threading.Lock()  # one opening at a time; not the queue's lock
        self._tried = threading.Condition(threading.Lock())
        self._attempts = 0
        self._dead_seen = 0  # the outbox handle's dead_letters already counted
        self._untold: list[Event] = []  # malformed rows counted, not yet told to on_error
        self._gave_up = ErrorHook(settings.on_error, log)
        # Rows whose fate is decided but not yet written: AFFY accepted (or refused) the
        # event and the store failed to delete (or bury) its row. Never sent again by this
        # process; written by ``settle`` once the store answers. Oldest first.
        self._owed: dict[str, Owed] = {}
        #: Events whose write was cut off after it was sent: their row may exist.
        self._uncertain: set[str] = set()
        self.outbox: Outbox | None = None
        #: Asks whoever opens the outbox in the background (the keeper) to try now.
        self.want_open: Callable[[], None] = lambda: None

    def open(self) -> Outbox | None:
        """The outbox, opened now if need be (waits on the store: never on a request
        thread in thread mode); None when there is none or it cannot be opened yet."""
        if self.outbox is None and self.location is not None:
            with self._lock:
                if self.outbox is None:
                    try:
                        self.outbox = open_outbox(self._settings, lease=self._lease)
                    except OutboxError as exc:
                        self.failed(
                            "cannot open the outbox %s (%s); events are kept in "
                            "memory until it opens",
                            self.location,
                            exc,
                        )
                    with self._tried:
                        self._attempts += 1
                        self._tried.notify_all()
        return self.outbox

    def wait_open(self, timeout: float) -> Outbox | None:
        """The outbox if open; else ask for one more try and wait for its result, at most
        ``timeout`` seconds. None when it is still not open."""
        outbox = self.outbox
        if outbox is not None or self.location is None:
            return outbox
        with self._tried:
            seen = self._attempts
        self.want_open()
        with self._tried:
            self._tried.wait_for(
                lambda: self.outbox is not None or self._attempts > seen, max(0.0, timeout)
            )
        return self.outbox

    def put(self, event: Event, *, claimed: bool) -> bool | None:
        """Store the event: None when it was not stored, else whether its row is leased
        to this process (False: the row waits behind its visit, for ``claim``)."""
        outbox = self.open()
        if outbox is None:
            return None
        try:
            return outbox.put(event, claimed=claimed)
        except OutboxBusy as exc:  # past the bound: kept in memory, the request goes on
            self._counters.add("outbox_slow")
            self._log.warn("outbox_slow", "the outbox %s is busy (%s)", self.location, exc)
        except OutboxUncertain as exc:
            with self._tried:
                if len(self._uncertain) < MAX_OWED:  # past it: sent again later, same key
                    self._uncertain.add(event.event_id)
            self.failed("cannot write the outbox %s: %s", self.location, exc)
        except OutboxError as exc:
            self.failed("cannot write the outbox %s: %s", self.location, exc)
        return None

    def claim(self, limit: int) -> list[Event]:
        """Lease claimable rows (see ``Outbox.claim``). Rows buried as malformed meanwhile
        are counted as given up here and told to ``on_error`` by ``tell_given_up``, which
        the caller runs once it holds no lock. Raises OutboxError."""
        outbox = self.outbox
        if outbox is None:
            return []
        self.settle()  # what is owed first: a visit's next row waits behind its delete
        try:
            return outbox.claim(limit)
        finally:
            self._count_dead(outbox)
            self._count_malformed(outbox)

    def _count_malformed(self, outbox: Outbox) -> None:
        buried = outbox.take_malformed()
        if not buried:
            return
        with self._counters.lock:
            for event in buried:
                self._counters.finish_locked("dropped_malformed", event.kind)
        with self._tried:
            self._untold += buried
        self._log.warn(
            "malformed",
            "moved %d undecodable row(s) of the outbox %s to its dead letters",
            len(buried),
            self.location,
            event=buried[0],
        )

    def tell_given_up(self) -> None:
        """Call ``on_error(event, "malformed")`` for the rows counted by ``claim``; call it
        holding no lock of the library (the hook may call back into it)."""
        with self._tried:
            untold, self._untold = self._untold, []
        for event in untold:
            self._gave_up(event, MALFORMED)

    def _count_dead(self, outbox: Outbox) -> None:
        with self._tried:
            new, self._dead_seen = outbox.dead_letters - self._dead_seen, outbox.dead_letters
        if new > 0:
            self._counters.add("dead_letters", new)

    def holds(self, event_id: str) -> bool:
        """Whether this process may send the row's event: not if its fate is decided
        already (an owed delete or dead letter), nor if another process took it over."""
        with self._tried:
            if event_id in self._owed:
                return False
        outbox = self.outbox
        return outbox is None or outbox.holds(event_id)

    def delete(self, event_id: str) -> None:
        """AFFY accepted the event: delete its row, now or (if the store fails) later."""
        if self.outbox is not None:
            self._write(event_id, None)

    def forget(self, event_id: str) -> None:
        """An event kept in memory only is done with (delivered, or given up and told):
        if its write was cut off after it was sent, the store may have written the row
        anyway; delete it, now or (if the store fails) later, so nobody sends it again."""
        with self._tried:
            if event_id not in self._uncertain:
                return
            self._uncertain.discard(event_id)
        if self.outbox is not None:
            self._write(event_id, None)

    def stored(self, event_id: str) -> None:
        """The event's row is written now (``persist_late``): no longer uncertain."""
        with self._tried:
            self._uncertain.discard(event_id)

    def finish(self, event: Event, outcome: Outcome) -> None:
        """The event is done with: delivered rows go, refused or expired ones become dead
        letters with AFFY's answer, minus what it quoted of the visitor (email, name)."""
        if self.outbox is None:
            return
        if outcome.verdict is Verdict.DELIVERED:
            self._write(event.event_id, None)
            return
        reason = "expired" if outcome.verdict is Verdict.EXPIRED else "rejected"
        answer = None if outcome.error is None else redacted(str(outcome.error), event)[:2000]
        self._write(event.event_id, (reason, answer))

    def _write(self, event_id: str, owed: Owed) -> None:
        """Write a row's fate; if the store fails, owe it (``settle`` retries)."""
        outbox = self.outbox
        assert outbox is not None
        try:
            self._apply(outbox, event_id, owed)
        except OutboxError as exc:
            self._owe(event_id, owed)
            self.failed("cannot update the outbox (retried later): %s", exc)

    def _apply(self, outbox: Outbox, event_id: str, owed: Owed) -> None:
        if owed is None:
            outbox.delete(event_id)
        else:
            outbox.bury(event_id, *owed)
            self._count_dead(outbox)

    def _owe(self, event_id: str, owed: Owed) -> None:
        with self._tried:
            self._owed[event_id] = owed
            while len(self._owed) > MAX_OWED:  # bounded: the oldest goes to its lease
                self._owed.pop(next(iter(self._owed)))

    def settle(self) -> int:
        """Retry the writes owed (oldest first, stopping at the first failure: the store
        is still down); how many are still owed. Raises nothing."""
        outbox = self.outbox
        if outbox is None:
            return 0
        with self._tried:
            owed = list(self._owed.items())
        for event_id, fate in owed:
            try:
                self._apply(outbox, event_id, fate)
            except OutboxError as exc:
                self.failed("cannot update the outbox (retried later): %s", exc)
                break
            with self._tried:
                self._owed.pop(event_id, None)
        with self._tried:
            return len(self._owed)

    def owes(self) -> bool:
        """Whether a row's fate (a delete, a dead letter) waits for the store to answer."""
        with self._tried:
            return bool(self._owed)

    def release(self, event_ids: Iterable[str]) -> None:
        if self.outbox is not None:
            try:
                self.outbox.release(event_ids)
            except OutboxError:  # not renewed any more: the lease expires anyway
                logger.debug("affy_middleware: cannot release outbox rows", exc_info=True)

    def close(self) -> None:
        """At a clean exit: write what is owed, give back every row this process still
        holds (another process sends them at once), close the handle."""
        outbox = self.outbox
        if outbox is None:
            return
        self.settle()
        try:
            outbox.release_all()
        except OutboxError:  # not renewed any more: the lease expires anyway
            logger.debug("affy_middleware: cannot release outbox rows", exc_info=True)

    def states(self) -> dict[str, int]:
        """The outbox's rows by state (``Outbox.states``; one read of the store, for
        ``stats()``); empty without an outbox, or when it cannot be read."""
        if self.outbox is None:
            return {}
        try:
            return self.outbox.states()
        except OutboxError:
            return {}

    def failed(self, message: str, *args: object) -> None:
        """Count an outbox error and say so (rate-limited)."""
        self._counters.add("spool_errors")
        self._log.warn("outbox", message, *args)
