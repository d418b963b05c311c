"""Leads never overtake their click, whichever process sent the click.

Under ``gunicorn -w 4`` a visitor's landing, signup and payment reach different workers,
each with its own queue: nothing orders them but AFFY itself. So a lead that expects a
click (``Event.expects_click``) goes out only once its click is known to be at AFFY: this
process delivered it (a bounded LRU of order keys), or AFFY's status endpoint says the
session has its affiliate (the positive answer is remembered the same way). Until then the
lead is a retry at T of its own visit, ``waiting_for_click``, for at most
``settings.click_wait`` seconds; past that a session lead goes anyway (losing the lead
would be worse than losing its attribution), counted ``sent_without_click``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from ..._errors import AffyAPIError
from ..._wire import Event
from ..support.counters import Counters
from ..support.logs import LogLimiter

__all__ = ["ClickGate", "KNOWN_CLICKS", "click_session"]

#: Order keys (sessions) remembered as having their click at AFFY. 10 000 short strings:
#: ~1 MB, hours of a busy worker's visits.
KNOWN_CLICKS = 10_000

#: Asks AFFY whether a session has its click: ``AffyClient.status(...).has_affiliate``.
StatusCheck = Callable[[str], bool]


def click_session(event: Event) -> str | None:
    """The session whose click this lead needs, or None when the status endpoint can't
    tell (a registration by click id without a session: the 404 rule covers it)."""
    key = event.order_key
    if key is None or key == event.body.get("clickId"):
        return None
    return key


class ClickGate:
    """Decides whether a lead may go now; shared by a backend's sender threads."""

    def __init__(
        self,
        click_wait: float,
        counters: Counters,
        log: LogLimiter,
        status: StatusCheck | None,
        size: int = KNOWN_CLICKS,
    ) -> None:
        self.click_wait = click_wait
        self._counters = counters
        self._log = log
        self._status = status
        self._size = size
        self._lock = threading.Lock()
        self._known: OrderedDict[str, None] = OrderedDict()

    def remember(self, key: str) -> None:
        """``key``'s click is at AFFY (we delivered it, or AFFY said so)."""
        with self._lock:
            self._known[key] = None
            self._known.move_to_end(key)
            while len(self._known) > self._size:
                self._known.popitem(last=False)

    def knows(self, key: str) -> bool:
        with self._lock:
            if key in self._known:
                self._known.move_to_end(key)
                return True
            return False

    def delivered(self, event: Event) -> None:
        if event.kind == "click" and event.order_key is not None:
            self.remember(event.order_key)

    def waited_out(self, event: Event) -> bool:
        """Whether the lead has waited for its click as long as it may."""
        return time.time() - event.created_at >= self.click_wait

    def must_wait(self, event: Event, *, hold: bool = True) -> bool:
        """True when the lead must wait for its click (counted ``waiting_for_click``).
        Raises a retryable ``AffyAPIError`` when AFFY could not be asked (its network
        error): the attempt step handles it as any failed send. ``hold`` False: the
        caller cannot keep the event for later (sync mode without an outbox)."""
        if event.kind == "click" or not event.expects_click:
            return False
        session = click_session(event)
        if session is None or self._status is None or self.knows(session):
            return False
        if not hold or self.waited_out(event):
            if not self._ask(session):
                self._counters.add("sent_without_click")
            return False
        if self._ask(session):
            return False
        self._counters.add("waiting_for_click")
        self.say_waiting(event, None)
        return True

    def say_waiting(self, event: Event, status: int | None) -> None:
        """A lead is held back for its click: normal across processes, said at INFO once
        per interval (the count is ``waiting_for_click``)."""
        self._log.warn(
            "waiting_for_click",
            "a %s waits for its click to reach AFFY (up to AFFY_CLICK_WAIT=%.0f s)",
            event.kind,
            self.click_wait,
            event=event,
            status=status,
            level=logging.INFO,
        )

    def _ask(self, session: str) -> bool:
        assert self._status is not None
        try:
            known = self._status(session)
        except AffyAPIError as exc:
            if exc.retryable:
                raise
            # AFFY refuses the status call (no API key, say): it can't order our leads,
            # so they go as they would without it. Said once per interval.
            self._log.warn(
                "status",
                "cannot check a session's click at AFFY: %s",
                exc,
                status=exc.status_code,
            )
            return True
        if known:
            self.remember(session)
        return known
