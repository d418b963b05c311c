"""The sandbox's rows: the events table, and how a row reads back as a recorded event."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .._wire import decode_body

__all__ = ["SCHEMA", "COLUMNS", "SESSION_LEADS", "Accepted", "AffiliateRow", "event_of"]

#: Leads AFFY links to a click through the session id. Recorded without an affiliate when
#: the session has no click yet, as the strict AFFY does: such a lead is lost to its
#: affiliate for good, so the sandbox marks it ``unattributed`` for tests and the dashboard.
SESSION_LEADS = ("registration_lead", "payment")

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    idempotency_key TEXT,
    body TEXT NOT NULL,
    received_at REAL NOT NULL,
    affiliate_reference TEXT,
    session_id TEXT,
    click_id TEXT,
    lead_value TEXT,
    response TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_by_key ON events(idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS clicks_by_click_id ON events(click_id) WHERE kind = 'click';
CREATE INDEX IF NOT EXISTS events_by_session ON events(session_id, kind);
"""

COLUMNS = (
    "id, kind, idempotency_key, body, received_at, affiliate_reference, session_id, "
    "click_id, lead_value, response"
)


@dataclass(frozen=True)
class Accepted:
    """The outcome of recording one call: the row id and the response body to send."""

    event_id: int
    response: str
    duplicate: bool


@dataclass(frozen=True)
class AffiliateRow:
    """One dashboard line: what one affiliate brought in."""

    affiliate_reference: str
    clicks: int
    registrations: int
    payments: int
    revenue: Decimal
    #: The ``clientId`` values its events carried (registrations by click carry none).
    client_ids: tuple[int, ...] = ()


def event_of(row: tuple[Any, ...]) -> dict[str, Any]:
    (event_id, kind, key, body, received_at, affiliate, session_id, click_id, value, response) = row
    return {
        "id": int(event_id),
        "kind": kind,
        "idempotency_key": key,
        "body": decode_body(body),
        "received_at": float(received_at),
        "affiliate_reference": affiliate,
        "session_id": session_id,
        "click_id": click_id,
        "lead_value": None if value is None else Decimal(value),
        "unattributed": kind in SESSION_LEADS and affiliate is None,
        "response": decode_body(response) if response else None,
    }
