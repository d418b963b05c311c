"""The off backend: tracking is off (``AFFY_DELIVERY=off``, no client id, or disabled)."""

from __future__ import annotations

from .._wire import Event
from .base import Backend
from .support.counters import empty_stats

__all__ = ["OffBackend"]


class OffBackend(Backend):
    """Accepts nothing and sends nothing."""

    blocks = False

    def submit(self, event: Event) -> bool:
        return False

    def stats(self) -> dict[str, int]:
        return empty_stats()
