"""Placeholder: to be replaced by the real module."""

from __future__ import annotations

__all__ = [
    "AffyClient",
    "AsyncAffyClient",
]


class AffyClient:
    """Placeholder."""


class AsyncAffyClient:
    """Placeholder."""
