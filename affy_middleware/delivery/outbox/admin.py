"""Operating an outbox by hand: ``affy outbox status|dead|retry|purge|init``.

Works on both stores through :class:`OutboxAdmin`: PostgreSQL (``postgres/admin.py``) and
the SQLite file (``sqlite/admin.py``, its own connection to the same file); ``open_admin``
in this package's ``__init__`` opens the one the settings name. Nothing here
shows a visitor's data: rows are described by id, kind, reason and AFFY's answer.
A retried dead letter keeps its event id, so AFFY sees the same ``Idempotency-Key``.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..._wire import decode_body

__all__ = ["DeadLetter", "OutboxAdmin", "OutboxStatus", "parse_age", "kind_of"]


@dataclass
class OutboxStatus:
    """Rows by state, named as the stores and ``stats()`` name them (``pending``:
    claimable or waiting; ``leased``: claimed by a process now; ``dead``)."""

    pending: int = 0
    leased: int = 0
    dead: int = 0
    #: kind -> state -> count (states: pending, leased, dead).
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    dead_by_reason: dict[str, int] = field(default_factory=dict)
    #: Seconds since the oldest row (pending or leased) was written; None when empty.
    oldest_age: float | None = None

    def add(self, kind: str, state: str, n: int) -> None:
        counts = self.by_kind.setdefault(kind, {"pending": 0, "leased": 0, "dead": 0})
        counts[state] += n
        setattr(self, state, getattr(self, state) + n)

    def as_dict(self) -> dict[str, object]:
        return {
            "pending": self.pending,
            "leased": self.leased,
            "dead": self.dead,
            "by_kind": self.by_kind,
            "dead_by_reason": self.dead_by_reason,
            "oldest_age": self.oldest_age,
        }


@dataclass
class DeadLetter:
    event_id: str
    kind: str
    reason: str
    answer: str | None
    #: When it was buried (epoch seconds), if the store says.
    buried_at: float | None

    def as_dict(self) -> dict[str, object]:
        return {
            "event_id": self.event_id,
            "kind": self.kind,
            "reason": self.reason,
            "answer": self.answer,
            "buried_at": self.buried_at,
        }


class OutboxAdmin(ABC):
    """An operator's handle on an outbox. Raises OutboxError (never a driver's error)."""

    #: Where it is, for messages (no password).
    location: str

    @abstractmethod
    def init(self) -> None:
        """Create the tables if missing."""

    @abstractmethod
    def status(self) -> OutboxStatus: ...

    @abstractmethod
    def dead(self, limit: int) -> list[DeadLetter]:
        """The newest ``limit`` dead letters."""

    @abstractmethod
    def retry(self, event_ids: Sequence[str] | None) -> int:
        """Move dead letters (these, or all when None) back to the outbox; how many."""

    @abstractmethod
    def purge(self, older_than: float) -> int:
        """Delete dead letters buried more than ``older_than`` seconds ago; how many."""

    def close(self) -> None:  # noqa: B027 (optional)
        """Close the handle."""


_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``12h``, ``7d``, ``2w`` as seconds; ValueError otherwise."""
    match = _AGE.match(text.lower())
    if match is None:
        raise ValueError(f"not an age: {text!r} (e.g. 3600, 30m, 12h, 7d)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def kind_of(record: bytes | str) -> str:
    """An event's kind from its stored record ("malformed" when it cannot be read)."""
    try:
        kind = decode_body(record).get("kind")
    except (ValueError, TypeError):
        return "malformed"
    return kind if isinstance(kind, str) else "malformed"
