"""pytest plugin: the ``affy_events`` fixture (filled in by the delivery work)."""

from __future__ import annotations

__all__: list[str] = []
