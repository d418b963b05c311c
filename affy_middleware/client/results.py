"""What AFFY answers to each call, as typed, frozen result models."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

__all__ = [
    "ClickResult",
    "RegistrationResult",
    "LeadResult",
    "PaymentResult",
    "StatusResult",
]


def _str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


def _int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _decimal(data: Mapping[str, Any], key: str) -> Decimal | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        return None
    try:
        return Decimal(value)
    except ArithmeticError:
        return None


@dataclass(frozen=True)
class ClickResult:
    """AFFY's answer to a click: its own integer ``click_id`` for our click."""

    success: bool
    click_id: int | None
    session_id: str | None
    message: str | None
    #: The whole JSON answer, fields we do not model included.
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClickResult:
        return cls(
            success=bool(data.get("success", True)),
            click_id=_int(data, "clickId"),
            session_id=_str(data, "sessionId"),
            message=_str(data, "message"),
            raw=data,
        )


@dataclass(frozen=True)
class RegistrationResult:
    """AFFY's answer to a registration by click id."""

    success: bool
    lead_id: int | None
    click_id: int | None
    message: str | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RegistrationResult:
        return cls(
            success=bool(data.get("success", True)),
            lead_id=_int(data, "leadId"),
            click_id=_int(data, "clickId"),
            message=_str(data, "message"),
            raw=data,
        )


_Lead = TypeVar("_Lead", bound="LeadResult")


@dataclass(frozen=True)
class LeadResult:
    """AFFY's answer to a lead (registration lead by session, or payment)."""

    success: bool
    lead_id: int | None
    lead_value: Decimal | None
    conversion_source: str | None
    message: str | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls: type[_Lead], data: Mapping[str, Any]) -> _Lead:
        return cls(
            success=bool(data.get("success", True)),
            lead_id=_int(data, "leadId"),
            lead_value=_decimal(data, "leadValue"),
            conversion_source=_str(data, "conversionSource"),
            message=_str(data, "message"),
            raw=data,
        )


@dataclass(frozen=True)
class PaymentResult(LeadResult):
    """AFFY's answer to a payment lead; ``lead_value`` is exact (``Decimal("99.00")``)."""


@dataclass(frozen=True)
class StatusResult:
    """What AFFY knows about a session: whether an affiliate referred it, and which."""

    session_id: str | None
    has_affiliate: bool
    affiliate_reference: str | None
    click_id: str | None
    #: When the attributed click happened, as AFFY wrote it (ISO 8601).
    clicked_at: str | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StatusResult:
        return cls(
            session_id=_str(data, "sessionId"),
            has_affiliate=bool(data.get("hasAffiliate", False)),
            affiliate_reference=_str(data, "affiliateReference"),
            click_id=_str(data, "clickId"),
            clicked_at=_str(data, "clickedAt"),
            raw=data,
        )
