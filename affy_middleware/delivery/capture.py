"""The capture backend: records events instead of sending them.

What ``capture()`` and the ``affy_events`` pytest fixture install: while installed, every
``backend_for(settings)`` answers it, whatever the settings say (a fake that is a real
implementation of the interface, as httpx's ``MockTransport``).
"""

from __future__ import annotations

from .._wire import Event
from .base import Backend
from .support.counters import empty_stats

__all__ = ["CaptureBackend"]


class CaptureBackend(Backend):
    """Appends each event to ``events`` (a list you may pass in) and accepts it::

        backend = CaptureBackend()
        backend.submit(event)   # True
        backend.events          # [event]
    """

    blocks = False

    def __init__(self, events: list[Event] | None = None) -> None:
        self.events: list[Event] = [] if events is None else events

    def submit(self, event: Event) -> bool:
        self.events.append(event)
        return True

    def stats(self) -> dict[str, int]:
        return empty_stats()  # nothing is delivered: the real backends' counts stay
