"""Fixtures of the delivery tests: ``make``, a backend on offline settings with the test's
own sender and the fast retry policy, closed after the test."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from _delivery import FAST, OFFLINE, Make

from affy_middleware._wire import Event
from affy_middleware.delivery import Backend, make_backend
from affy_middleware.delivery.sending.breaker import RetryPolicy


@pytest.fixture
def make(made: list[Backend]) -> Make:
    """A factory of backends on :data:`_delivery.OFFLINE` changed by ``**changes``, sending
    through ``send`` with ``policy``; each one is closed after the test (``made``)."""

    def factory(
        send: Callable[[Event], object], policy: RetryPolicy = FAST, **changes: object
    ) -> Backend:
        backend = make_backend(OFFLINE.replace(**changes), send=send, retry_policy=policy)
        made.append(backend)
        return backend

    return factory
