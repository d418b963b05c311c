"""Turning a stored record back into an event, checked in full before anyone leases it.

Shared by every store: a row that fails here is a dead letter (``MALFORMED``), so one bad
row can neither stop the relay nor strand the good rows claimed with it.
"""

from __future__ import annotations

import math
from typing import Any

from ..._wire import API_PATHS, Event, decode_body
from ..support.counters import UNKNOWN_KIND

__all__ = ["decode_record", "stand_in"]


def decode_record(raw: object) -> Event:
    """The event a stored record holds. Raises ValueError when it is not a valid one:
    not JSON, an unknown kind, a body that is not an object, ids that are not strings."""
    if not isinstance(raw, bytes | str):
        raise ValueError(f"record is {type(raw).__name__}, not text")
    try:
        event = Event.from_record(raw)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"undecodable record: {exc!r}") from None
    if event.kind not in API_PATHS:
        raise ValueError(f"unknown kind {event.kind!r}")
    if not isinstance(event.body, dict) or not all(isinstance(k, str) for k in event.body):
        raise ValueError("body is not a JSON object")
    if not isinstance(event.event_id, str) or not event.event_id:
        raise ValueError("event id is not a string")
    if event.order_key is not None and not isinstance(event.order_key, str):
        raise ValueError("order key is not a string")
    if event.created_at != event.created_at:  # NaN would never expire
        raise ValueError("created_at is not a number")
    return event


def stand_in(
    event_id: object, kind: object, order_key: object, created_at: object, record: object
) -> Event:
    """What ``on_error`` gets for a row buried as malformed: its id, kind and order key as
    far as they can be read, its ``created_at``, and an empty body (the record is not one
    we can trust, and may hold anything). ``kind`` is the store's column (PostgreSQL), or
    None to read it from the record (SQLite); a kind that is not one of ours becomes
    ``UNKNOWN_KIND``, so a stored word never becomes a metric label."""
    if kind is None:
        kind = _kind_in(record)
    when = created_at if isinstance(created_at, int | float) else 0.0
    return Event(
        kind=kind if isinstance(kind, str) and kind in API_PATHS else UNKNOWN_KIND,  # type: ignore[arg-type]
        body={},
        order_key=order_key if isinstance(order_key, str) else None,
        event_id=str(event_id),
        created_at=float(when) if math.isfinite(when) else 0.0,
    )


def _kind_in(record: object) -> Any:
    try:
        return decode_body(record).get("kind") if isinstance(record, bytes | str) else None
    except (ValueError, TypeError):
        return None
