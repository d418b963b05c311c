"""What the delivery and outbox tests share: a retry policy fast enough for a test and
the payment event they deliver (``made`` and ``make``, the backends closed after each test,
are fixtures in ``tests/conftest.py``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from affy_middleware._settings import Settings
from affy_middleware._wire import Event, lead_value, payment_body
from affy_middleware.delivery import Backend
from affy_middleware.delivery.sending.breaker import RetryPolicy

#: Backoff and pauses of a few hundredths of a second (the defaults suit a remote API:
#: 0.5 s windows, 30 s cap), so that retries and pauses happen within a test.
FAST = RetryPolicy(base=0.02, cap=0.1, failure_threshold=3, min_pause=0.01)

#: For a sandbox over real HTTP: short backoff, so that an outage's pauses end within the
#: test (the default cap is 30 s), the default threshold and shortest pause.
OVER_HTTP = RetryPolicy(base=0.05, cap=0.3)

#: The ``make`` fixture: ``make(send, policy=FAST, **settings_changes)`` -> a Backend.
Make = Callable[..., Backend]

#: Settings whose AFFY nobody answers (port 9, discard): the tests pass their own sender.
OFFLINE = Settings(client_id=1, api_url="http://127.0.0.1:9")


def fast_policy(**changes: Any) -> RetryPolicy:
    """:data:`FAST` with ``changes`` (a threshold, a longer pause) for one test's need."""
    return dataclasses.replace(FAST, **changes)


def payment(
    session: str | None = "s1",
    amount: str = "9.99",
    *,
    email: str | None = None,
    **event: Any,
) -> Event:
    """A payment lead of visit ``session`` (None: an organic one, in no visit's order);
    ``event``: the Event's own fields (``created_at``, ``event_id``, ``expects_click``)."""
    body = payment_body(
        1, session_id=session or "organic", lead_value=lead_value(amount), customer_email=email
    )
    return Event(kind="payment", body=body, order_key=session, **event)
