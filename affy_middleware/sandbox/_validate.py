"""Request checks: every client mistake becomes a ``BadRequest`` naming the field."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, NoReturn

__all__ = [
    "BadRequest",
    "parse_json",
    "require_int",
    "require_str",
    "optional_str",
    "require_amount",
    "require_literal",
    "MAX_BODY",
    "MAX_STRING",
]

#: Largest request body accepted (64 KiB); bigger ones get 413.
MAX_BODY = 64 * 1024
#: Longest string accepted in any field.
MAX_STRING = 2048


class BadRequest(Exception):
    """A client mistake: answered with ``status`` and a JSON error naming ``field``."""

    def __init__(
        self, message: str, *, field: str | None = None, status: int = 400, error: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status
        self.error = error or {
            400: "Bad Request",
            404: "Not Found",
            413: "Payload Too Large",
            401: "Unauthorized",
            405: "Method Not Allowed",
        }.get(status, "Error")


def _fail(field: str, problem: str) -> NoReturn:
    raise BadRequest(f"{field}: {problem}", field=field)


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(raw: bytes) -> dict[str, Any]:
    """A JSON object from the request body; floats come back as exact Decimals."""
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, parse_float=Decimal, parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise BadRequest("body: request body is not UTF-8", field="body") from None
    except (ValueError, RecursionError) as exc:
        raise BadRequest(
            f"body: request body is not valid JSON ({exc})"[:300], field="body"
        ) from None
    if not isinstance(value, dict):
        raise BadRequest(f"body: expected a JSON object, got {type(value).__name__}", field="body")
    return value


def require_int(body: dict[str, Any], field: str) -> int:
    value = body.get(field)
    if value is None:
        _fail(field, "is required")
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(field, f"must be an integer, got {type(value).__name__}")
    if not 0 < value < 2**63:
        _fail(field, "must be a positive 64-bit integer")
    return value


def optional_str(body: dict[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        _fail(field, f"must be a string, got {type(value).__name__}")
    if len(value) > MAX_STRING:
        _fail(field, f"is longer than {MAX_STRING} characters")
    if "\x00" in value:
        _fail(field, "must not contain NUL characters")
    return value


def require_str(body: dict[str, Any], field: str) -> str:
    value = optional_str(body, field)
    if value is None or not value.strip():
        _fail(field, "is required (a non-empty string)")
    return value


def require_literal(body: dict[str, Any], field: str, expected: str) -> str:
    value = body.get(field)
    if value != expected:
        _fail(field, f"must be {expected!r}, got {value!r}"[:200])
    return expected


def require_amount(body: dict[str, Any], field: str) -> Decimal:
    value = body.get(field)
    if value is None:
        _fail(field, "is required")
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        _fail(field, f"must be a JSON number, got {type(value).__name__}")
    amount = Decimal(value)
    if not amount.is_finite() or amount < 0:
        _fail(field, "must be a finite number >= 0")
    if amount >= Decimal(10) ** 12:
        _fail(field, "is unreasonably large")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -8:
        _fail(field, "has more than 8 decimal places")
    return amount
