"""Placeholder: to be replaced by the real module."""

from __future__ import annotations

from typing import Any

__all__ = [
    "track_registration",
    "track_payment",
    "identify",
    "set_lead_value",
    "report_registration",
    "report_payment",
]


def track_registration(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError


track_payment = identify = set_lead_value = track_registration
report_registration = report_payment = track_registration
