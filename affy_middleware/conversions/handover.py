"""The hand-over seam: when a conversion's event goes to delivery.

A conversion is a fact about the host app's data ("this user signed up"). When the app
writes that data in a database transaction, the event must follow the transaction: sent
when it commits, never when it rolls back. The core knows no database, so an integration
installs a *hand-over*: a callable that gets ``send`` (submits the event, returns whether
delivery accepted it) and either takes the event (schedules ``send``, returns True) or
declines with None (``send`` runs now). ``affy_middleware.django`` installs one that defers
``send`` to ``transaction.on_commit`` inside an atomic block.

Clicks are not handed over: a landing is a fact about the visitor, not about the app's data.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["Send", "HandOver", "install_hand_over", "remove_hand_over", "hand_over"]

Send = Callable[[], bool]
"""Submits one event to delivery; True when accepted."""

HandOver = Callable[[Send], "bool | None"]
"""``hook(send) -> True`` when it took the event (it calls ``send`` later, e.g. on commit),
None when it declines (``send`` runs now)."""

_lock = threading.Lock()
# A tuple swapped whole under the lock: the request path reads it without locking.
_hand_overs: tuple[HandOver, ...] = ()
#: Whether any hand-over is installed (read on the request path, without a call).
installed = False


def install_hand_over(hook: HandOver) -> None:
    """Add ``hook`` (once; installing it again changes nothing)."""
    global _hand_overs, installed
    if not callable(hook):
        raise TypeError(f"a hand-over must be a callable(send) -> bool | None, got {hook!r}")
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


def hand_over(send: Send) -> bool:
    """Give ``send`` to the first hand-over that takes it, else call it now."""
    for hook in _hand_overs:
        taken = hook(send)
        if taken is not None:
            return taken
    return send()
