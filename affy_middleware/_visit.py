"""Placeholder: to be replaced by the real module."""

from __future__ import annotations

__all__ = ["Visit", "current_visit"]


class Visit:
    """Placeholder."""


def current_visit() -> Visit | None:
    return None
