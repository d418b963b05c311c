"""Fault injection: latency, random 5xx, an outage window and a burst of 429s."""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

__all__ = ["Faults", "Fault", "fault_args"]


@dataclass(frozen=True)
class Fault:
    """An injected failure: the status to answer with and its headers."""

    status: int
    error: str
    message: str
    retry_after: float | None = None


def _seconds(name: str, value: Any, high: float = 3600.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or not 0 <= value <= high:
        raise ValueError(f"{name} must be from 0 to {high} seconds, got {value!r}")
    return float(value)


class Faults:
    """The faults currently switched on. Thread-safe; every field can change at run time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self.latency = 0.0
            self.error_rate = 0.0
            self.error_status = 503
            self.outage_until = 0.0
            self.rate_limit = 0
            self.retry_after: float | None = None

    def set(
        self,
        *,
        latency: float = 0.0,
        error_rate: float = 0.0,
        outage_seconds: float = 0.0,
        rate_limit: int = 0,
        retry_after: float | None = None,
        error_status: int = 503,
    ) -> None:
        """Replace every fault at once (arguments not given are switched off).

        ``retry_after`` (seconds), when given, is sent as ``Retry-After`` on every injected
        failure: the 429s of ``rate_limit``, the 503s of the outage and the random errors.
        """
        latency = _seconds("latency", latency, 300.0)
        outage_seconds = _seconds("outage_seconds", outage_seconds, 86400.0)
        if retry_after is not None:
            retry_after = _seconds("retry_after", retry_after, 86400.0)
        if isinstance(error_rate, bool) or not isinstance(error_rate, (int, float)):
            raise ValueError(f"error_rate must be a number from 0 to 1, got {error_rate!r}")
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError(f"error_rate must be from 0 to 1, got {error_rate!r}")
        if isinstance(rate_limit, bool) or not isinstance(rate_limit, int) or rate_limit < 0:
            raise ValueError(f"rate_limit must be a count >= 0, got {rate_limit!r}")
        if (
            isinstance(error_status, bool)
            or not isinstance(error_status, int)
            or not (error_status == 408 or 500 <= error_status <= 599)
        ):
            raise ValueError(f"error_status must be 408 or 5xx, got {error_status!r}")
        with self._lock:
            self.latency = latency
            self.error_rate = float(error_rate)
            self.error_status = error_status
            self.outage_until = time.monotonic() + outage_seconds if outage_seconds else 0.0
            self.rate_limit = rate_limit
            self.retry_after = retry_after

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "latency": self.latency,
                "error_rate": self.error_rate,
                "error_status": self.error_status,
                "outage_seconds": max(0.0, self.outage_until - time.monotonic()),
                "rate_limit": self.rate_limit,
                "retry_after": self.retry_after,
            }

    def decide(self) -> tuple[float, Fault | None]:
        """For one API call: how long to stall first, and the failure to answer, if any."""
        with self._lock:
            latency = self.latency
            remaining = self.outage_until - time.monotonic()
            if remaining > 0:
                return latency, Fault(
                    503,
                    "Service Unavailable",
                    "sandbox outage window: AFFY is down",
                    self.retry_after,
                )
            if self.rate_limit > 0:
                self.rate_limit -= 1
                return latency, Fault(
                    429, "Too Many Requests", "sandbox rate limit: slow down", self.retry_after
                )
            if self.error_rate and self._random.random() < self.error_rate:
                return latency, Fault(
                    self.error_status,
                    "Server Error",
                    "sandbox injected a random server error",
                    self.retry_after,
                )
        return latency, None


_FAULT_FIELDS = (
    "latency",
    "error_rate",
    "outage_seconds",
    "rate_limit",
    "retry_after",
    "error_status",
)


def fault_args(body: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :meth:`Faults.set` from an admin call's JSON body."""
    unknown = set(body) - set(_FAULT_FIELDS)
    if unknown:
        raise ValueError(f"unknown fault(s) {sorted(unknown)}; known: {list(_FAULT_FIELDS)}")
    return {k: float(v) if isinstance(v, Decimal) else v for k, v in body.items()}
