"""The process's backends set aside for a test that reads every backend (``health()``,
the metrics), and put back afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from affy_middleware import Settings, delivery
from affy_middleware.delivery import Backend


class Registry(dict[Settings, Backend]):
    """What a test puts in: each becomes the process's backend for its settings."""

    def __setitem__(self, settings: Settings, backend: Backend) -> None:
        super().__setitem__(settings, backend)
        delivery.adopt(settings, backend)


@contextlib.contextmanager
def only_these_backends() -> Iterator[dict[Settings, Backend]]:
    """No backend but those the test puts in (closed at the end); earlier tests' come back."""
    with delivery.set_aside():
        yield Registry()
