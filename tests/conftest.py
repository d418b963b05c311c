"""Shared fixtures: a real sandbox AFFY on 127.0.0.1, fresh for every test; the backends a
test makes (``made``; ``make``, on offline settings with the test's own sender and the fast
retry policy of ``_delivery.py``), closed after it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from _delivery import FAST, OFFLINE, Make

from affy_middleware._wire import Event
from affy_middleware.delivery import Backend, make_backend
from affy_middleware.delivery.sending.breaker import RetryPolicy
from affy_middleware.sandbox import SandboxServer

#: The API key every test sandbox requires on authenticated calls.
TEST_API_KEY = "test-key"

# A pytest-django project with its own ini, run in its own session by
# integrations/test_django_recipe.py (this suite configures Django itself).
collect_ignore = ["djrecipe"]


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """A local AFFY over real HTTP (port 0, in memory, api_key "test-key")."""
    with SandboxServer(port=0, api_key=TEST_API_KEY, db=None) as server:
        yield server


@pytest.fixture
def made() -> Iterator[list[Backend]]:
    """The backends a test made (it appends them): closed for good after the test, each
    given half a second to deliver what it still holds."""
    backends: list[Backend] = []
    yield backends
    for backend in backends:
        backend.close(0.5, final=True)


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
