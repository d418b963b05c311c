"""The process's backend registry, emptied for each metrics test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _backends import only_these_backends

from affy_middleware import Settings
from affy_middleware.delivery import Backend


@pytest.fixture
def registry() -> Iterator[dict[Settings, Backend]]:
    """Only this test's backends are read (earlier tests' are put back afterwards)."""
    with only_these_backends() as backends:
        yield backends
