"""Placeholder: to be replaced by the real module."""

from __future__ import annotations

__all__ = [
    "AffyASGIMiddleware",
]


class AffyASGIMiddleware:
    """Placeholder."""
