"""What goes over the wire: the API paths (one table), the body encoding and the queued
``Event``. The builders of AFFY's request bodies are in ``_bodies.py`` (one per body:
click, registration, registration lead by session, payment), importable from here too."""

from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Literal

from ._bodies import (
    checked_click_body,
    click_body,
    lead_value,
    payment_body,
    registration_body,
    registration_lead_body,
)
from ._process import PerProcess

__all__ = [
    "API_PATHS",
    "EventKind",
    "Event",
    "encode_body",
    "decode_body",
    "lead_value",
    "click_body",
    "checked_click_body",
    "registration_body",
    "registration_lead_body",
    "payment_body",
]

EventKind = Literal["click", "registration", "registration_lead", "payment"]

#: Every AFFY path in one place. AFFY's docs cut the two lead paths short; one edit here
#: fixes them everywhere (client, sandbox, tests).
API_PATHS: Final[dict[str, str]] = {
    "click": "/api/v1/tracking/click",
    "registration": "/api/v1/tracking/registration",
    "registration_lead": "/api/v1/tracking/lead/registration",
    "payment": "/api/v1/tracking/lead/payment",
    "status": "/api/v1/tracking/status/{session_id}",
}


def _encode_value(value: Any) -> str:
    if isinstance(value, Decimal):
        # A JSON number with its cents as written: Decimal("99.00") -> 99.00, never 99.0000001.
        return format(value, "f")
    if isinstance(value, dict):
        return _encode_object(value)
    return json.dumps(value, ensure_ascii=False)


def _encode_object(body: dict[str, Any]) -> str:
    return "{" + ",".join(f"{json.dumps(k)}:{_encode_value(v)}" for k, v in body.items()) + "}"


def encode_body(body: dict[str, Any]) -> bytes:
    """Serialise a JSON body; ``Decimal`` values become exact JSON numbers (``99.00``)."""
    return _encode_object(body).encode("utf-8")


def decode_body(raw: bytes | str) -> dict[str, Any]:
    """The inverse of :func:`encode_body`: JSON numbers with a fraction come back as Decimal."""
    value = json.loads(raw, parse_float=Decimal)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


class _IdSource:
    """One process's event ids: 64 random bits and a counter, as one 128-bit count (the
    random bits high, the counter low: ``to_bytes(16).hex()`` formats both at once, at
    half the cost of ``f"{prefix}{n:016x}"``)."""

    __slots__ = ("counter",)

    def __init__(self, parent: _IdSource | None = None) -> None:
        self.counter = itertools.count(int.from_bytes(os.urandom(8), "big") << 64 | 1)


#: Event ids: 64 random bits drawn once per process and a counter, 32 hex characters like
#: a UUID's hex. Unique across processes and restarts (a collision needs two processes to
#: draw the same 64 bits), without an ``os.urandom`` call per event as ``uuid.uuid4()``
#: would make (docs/benchmarks/conversions.md). Found by pid, not renewed by an at-fork
#: hook: uWSGI forks without running those, and the ``Event`` default factory draws an id
#: before any backend could check the pid.
_ids: PerProcess[_IdSource] = PerProcess(_IdSource)


def new_event_id() -> str:
    """A fresh event id (``Idempotency-Key``): 32 hex characters, unique across processes
    and forks (with or without at-fork hooks)."""
    ids = _ids.get()
    # next() on a count is atomic (GIL); 2**64 events per process never overflow the low half.
    return next(ids.counter).to_bytes(16, "big").hex()


@dataclass(slots=True)
class Event:
    """One tracking call waiting to be delivered.

    ``body`` is the JSON body exactly as AFFY expects it (camelCase keys). ``event_id`` is
    made once, at enqueue time, and sent as ``Idempotency-Key`` on every attempt.
    ``order_key`` groups the events of one visit so they are delivered in order.
    ``expects_click``: a lead of a visit that came with an affiliate click, which must not
    reach AFFY before that click, whichever process sends it (``delivery/sending/clicks.py``).
    """

    kind: EventKind
    body: dict[str, Any]
    order_key: str | None = None
    event_id: str = field(default_factory=new_event_id)
    created_at: float = field(default_factory=time.time)
    expects_click: bool = False

    @property
    def path(self) -> str:
        return API_PATHS[self.kind]

    def encoded(self) -> bytes:
        return encode_body(self.body)

    def to_record(self) -> bytes:
        """A self-contained JSON record (for the spool)."""
        return encode_body(
            {
                "kind": self.kind,
                "eventId": self.event_id,
                "orderKey": self.order_key,
                "createdAt": self.created_at,
                "body": self.body,
                "expectsClick": self.expects_click,
            }
        )

    @classmethod
    def from_record(cls, raw: bytes | str) -> Event:
        data = decode_body(raw)
        return cls(
            kind=data["kind"],
            body=data["body"],
            order_key=data.get("orderKey"),
            event_id=data["eventId"],
            created_at=float(data["createdAt"]),
            expects_click=data.get("expectsClick") is True,
        )
