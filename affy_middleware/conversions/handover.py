"""The hand-over seam: when a conversion's event goes to delivery.

A conversion is a fact about the host app's data ("this user signed up"). When the app
writes that data in a database transaction, the event must follow the transaction: sent
when it commits, never when it rolls back. The core knows no database, so an integration
installs a *hand-over*: a callable that gets the :class:`Conversion` (its event and
settings; calling it submits the event and returns whether delivery accepted it) and
either takes it (sends it later, or stores it itself; returns True) or declines with None
(it is sent now). ``affy_middleware.django`` installs one that, inside an atomic block,
writes the outbox row in the app's own transaction when the outbox is the app's database,
else defers the send to ``transaction.on_commit``.

Clicks are not handed over: a landing is a fact about the visitor, not about the app's data.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .. import delivery
from .._settings import Settings
from .._wire import Event

__all__ = ["Conversion", "Send", "HandOver", "install_hand_over", "remove_hand_over", "hand_over"]

Send = Callable[[], bool]
"""Submits one event to delivery; True when accepted."""


class Conversion:
    """One conversion's event on its way to delivery, with the settings it goes under.
    Calling it submits the event now (a :data:`Send`)."""

    __slots__ = ("settings", "event")

    def __init__(self, settings: Settings, event: Event) -> None:
        self.settings = settings
        self.event = event

    def __call__(self) -> bool:
        return delivery.backend_for(self.settings).submit(self.event)

    def __repr__(self) -> str:
        return f"Conversion({self.event.kind!r}, {self.event.event_id!r})"


HandOver = Callable[[Conversion], "bool | None"]
"""``hook(conversion) -> True`` when it took the event (it calls ``conversion()`` later,
e.g. on commit, or stores the event itself), None when it declines (sent now)."""

_lock = threading.Lock()
# A tuple swapped whole under the lock: the request path reads it without locking.
_hand_overs: tuple[HandOver, ...] = ()
#: Whether any hand-over is installed (read on the request path, without a call).
installed = False


def install_hand_over(hook: HandOver) -> None:
    """Add ``hook`` (once; installing it again changes nothing)."""
    global _hand_overs, installed
    if not callable(hook):
        raise TypeError(f"a hand-over must be a callable(conversion) -> bool | None, got {hook!r}")
    with _lock:
        if hook not in _hand_overs:
            _hand_overs = (*_hand_overs, hook)
        installed = bool(_hand_overs)


def remove_hand_over(hook: HandOver) -> None:
    """Remove ``hook`` if installed."""
    global _hand_overs, installed
    with _lock:
        _hand_overs = tuple(h for h in _hand_overs if h != hook)
        installed = bool(_hand_overs)


def hand_over(conversion: Conversion) -> bool:
    """Give the conversion to the first hand-over that takes it, else submit it now."""
    for hook in _hand_overs:
        taken = hook(conversion)
        if taken is not None:
            return taken
    return conversion()
