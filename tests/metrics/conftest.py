"""The process's backend registry, emptied for each metrics test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from affy_middleware import Settings
from affy_middleware import delivery as delivery_package
from affy_middleware.delivery import Backend


@pytest.fixture
def registry() -> Iterator[dict[Settings, Backend]]:
    """Only this test's backends are read (earlier tests' are put back afterwards)."""
    backends = delivery_package._backends
    saved = dict(backends)
    backends.clear()
    try:
        yield backends
    finally:
        for backend in backends.values():
            backend.close(1.0)
        backends.clear()
        backends.update(saved)
