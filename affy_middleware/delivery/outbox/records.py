"""Turning a stored record back into an event, checked in full before anyone leases it.

Shared by every store: a row that fails here is a dead letter (``MALFORMED``), so one bad
row can neither stop the relay nor strand the good rows claimed with it.
"""

from __future__ import annotations

from ..._wire import API_PATHS, Event

__all__ = ["decode_record"]


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
