"""Which outbox rows one PostgreSQL handle holds: the bookkeeping, without SQL.

Held rows are renewed and sent by this process. Lost ones were taken over by another
process while this one was late (never sent, whatever the lease clock says). Rows being
written, or whose write was cut off (the event is in memory and the row may be ours),
are never given back as unknown. Thread-safe: one lock, never held over a database call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

__all__ = ["Holdings"]


class Holdings:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: set[str] = set()
        self._lost: set[str] = set()
        self._writing: set[str] = set()
        #: When every held row was last known to be leased (``time.time()``).
        self.renewed_at = time.time()

    def hold(self, ids: Iterable[str]) -> None:
        with self._lock:
            self._held.update(ids)

    def forget(self, ids: Iterable[str]) -> None:
        """The rows are gone, or given back: neither held, lost nor being written."""
        ids = list(ids)
        with self._lock:
            self._held.difference_update(ids)
            self._lost.difference_update(ids)
            self._writing.difference_update(ids)

    def writing(self, event_id: str) -> None:
        with self._lock:
            self._writing.add(event_id)

    def written(self, event_id: str) -> None:
        with self._lock:
            self._writing.discard(event_id)

    def held(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def held_or_lost(self) -> list[str]:
        """What a clean exit gives back."""
        with self._lock:
            return list(self._held | self._lost)

    def known(self) -> list[str]:
        """Every row this handle knows of (held, lost or being written)."""
        with self._lock:
            return list(self._held | self._lost | self._writing)

    def renewed(self, asked: list[str], still_ours: set[str], at: float) -> None:
        """A renewal of ``asked`` came back with ``still_ours``: the others are lost (a
        row held meanwhile, by a put or a claim, is asked about next time)."""
        with self._lock:
            lost = self._held.intersection(asked) - still_ours
            self._lost |= lost
            self._held -= lost
            self.renewed_at = at

    def is_held(self, event_id: str) -> bool:
        """Held and not lost (a row waiting for its visit's turn was never held)."""
        with self._lock:
            return event_id in self._held and event_id not in self._lost

    def lose(self, event_id: str) -> None:
        with self._lock:
            self._lost.add(event_id)
