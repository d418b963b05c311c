"""The process's backend registry, emptied for a test that reads every backend
(``health()``, the metrics), and put back afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from affy_middleware import Settings
from affy_middleware import delivery as delivery_package
from affy_middleware.delivery import Backend


@contextlib.contextmanager
def only_these_backends() -> Iterator[dict[Settings, Backend]]:
    """The registry, empty; what the test puts in it is closed at the end, and earlier
    tests' backends come back."""
    backends = delivery_package._registry.get().backends
    saved = dict(backends)
    backends.clear()
    try:
        yield backends
    finally:
        for backend in backends.values():
            backend.close(1.0)
        backends.clear()
        backends.update(saved)
