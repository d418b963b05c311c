"""The ``Backend`` interface: what the request path hands events to.

Every delivery mode is one implementation (``thread``, ``inline``, ``capture``, ``off``);
:func:`affy_middleware.delivery.backend_for` picks it from the settings, so nothing else
needs to know which mode is on.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._wire import Event

if TYPE_CHECKING:
    from .outbox.address import Address

__all__ = ["Backend", "Sender", "State"]

#: What sends one event to AFFY: returns its answer, raises the ``AffyAPIError`` family.
#: Tests and benchmarks pass their own in place of the HTTP client.
Sender = Callable[[Event], object]


class State(enum.Enum):
    """Where a backend is in its life (as httpx's ``ClientState``)."""

    #: Created; no thread runs yet (they start with the first event, or the outbox replay).
    IDLE = 1
    #: Delivering: sender threads (or the outbox's lease keeper) may be running.
    RUNNING = 2
    #: ``close()`` is stopping the threads: ``submit`` still accepts (the events wait for
    #: the next start, or are handed back by this shutdown), ``flush`` still waits.
    STOPPING = 3
    #: ``close()`` ran: threads stopped; a later ``submit`` starts again.
    STOPPED = 4
    #: Closed for good at interpreter exit: ``submit`` refuses everything.
    CLOSED = 5


class Backend(ABC):
    """Takes events from the request path and gets them to AFFY (or wherever).

    ``submit`` never blocks on the network and never raises, except where ``blocks`` says
    it does send inline: async callers then run it on a worker thread. ``flush`` and
    ``close`` are bounded by their timeout and safe from any thread::

        backend = backend_for(settings)
        backend.submit(event)     # True: accepted
        backend.flush(2.0)        # True: everything accepted was delivered
    """

    #: True when ``submit`` makes the HTTP call itself (async callers hop to a thread).
    blocks: bool = False

    @abstractmethod
    def submit(self, event: Event) -> bool:
        """Offer an event; True when accepted for delivery (inline: delivered)."""

    def start(self) -> None:  # noqa: B027 (optional: a no-op by default)
        """Start delivering now rather than at the first event (replays an outbox)."""

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything accepted was delivered (or dropped); True if it was."""
        return True

    def close(  # noqa: B027 (optional: a no-op by default)
        self, timeout: float | None = None, *, final: bool = False, handover: bool = False
    ) -> None:
        """Flush for up to ``timeout`` seconds, then stop (``final``: for good). With
        ``handover`` (or ``final``), outbox rows not finished are given back to the other
        processes at once rather than kept for this one's next start."""

    @abstractmethod
    def stats(self) -> dict[str, int]:
        """The counters of ``affy_middleware.stats()``, for this backend alone."""

    def oldest_event_at(self) -> float | None:
        """When the oldest event not yet delivered was made (``time.time()``), where the
        backend knows it; None otherwise (read-only, for ``health()``)."""
        return None

    def app_outbox(self) -> Address | None:
        """The outbox this backend delivers from, to an integration that may write rows
        into it in the app's own transaction (``outbox.app_rows``); None: submit instead."""
        return None

    def rows_written(self) -> None:  # noqa: B027 (optional: a no-op by default)
        """The app committed rows it wrote into :meth:`app_outbox`: take them now rather
        than at the lease keeper's next round."""

    # Fork hooks, called by the registry; the backend's own pid check covers forks
    # that run no at-fork hook (uWSGI).
    def before_fork(self) -> None:  # noqa: B027 (optional: a no-op by default)
        """Hold new HTTP calls and wait (bounded) for running ones to end."""

    def after_fork_in_parent(self) -> None:  # noqa: B027 (optional: a no-op by default)
        """Let HTTP calls go again."""

    def after_fork_in_child(self) -> None:  # noqa: B027 (optional: a no-op by default)
        """Start from a fresh, empty state: the parent's events stay the parent's."""
