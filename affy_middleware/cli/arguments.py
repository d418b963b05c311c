"""The types of the ``affy`` options: each checks one value and says what is wrong with it."""

from __future__ import annotations

import argparse
import math
import re
from decimal import Decimal

from .._errors import AffyConfigError
from .._settings import Settings
from .._wire import lead_value

__all__ = [
    "positive_int",
    "seconds",
    "wait_seconds",
    "api_url",
    "api_key",
    "amount",
    "session_id",
    "email",
    "reference",
]


def positive_int(text: str) -> int:
    value = text.strip()
    if not value.isdigit() or int(value) <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(value)


def seconds(text: str) -> float:
    """A time limit for one call: more than 0 (a call cannot take no time), at most 300."""
    value = _number_of_seconds(text)
    if not 0 < value <= 300:
        raise argparse.ArgumentTypeError(
            f"must be more than 0 and at most 300 seconds, got {text!r}"
        )
    return value


def wait_seconds(text: str) -> float:
    """How long to wait: 0 (do not wait) to 300 seconds."""
    value = _number_of_seconds(text)
    if not 0 <= value <= 300:
        raise argparse.ArgumentTypeError(f"must be from 0 to 300 seconds, got {text!r}")
    return value


def _number_of_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}")
    return value


def api_url(text: str) -> str:
    try:
        return Settings(api_url=text).api_url
    except AffyConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).split(" ", 2)[-1]) from None


def api_key(text: str) -> str:
    try:
        Settings(api_key=text)
    except AffyConfigError:  # the message never echoes the key; neither do we
        raise argparse.ArgumentTypeError(
            "must be a non-empty string without spaces or control characters"
        ) from None
    return text


def amount(text: str) -> Decimal:
    try:
        return lead_value(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


#: A session id as AFFY and the cookies write it: URL-safe characters, no spaces.
_SESSION_ID = re.compile(r"[A-Za-z0-9._\-]{1,128}")


def session_id(text: str) -> str:
    if _SESSION_ID.fullmatch(text) is None:
        raise argparse.ArgumentTypeError(
            f"must be a session id (1 to 128 of A-Z a-z 0-9 . _ -, the affy_session_id "
            f"cookie's value), got {text!r}"
        )
    return text


def email(text: str) -> str:
    value = text.strip()
    if "@" not in value or len(value) > 254 or not value.isprintable() or " " in value:
        raise argparse.ArgumentTypeError(f"must be an email address, got {text!r}")
    return value


def reference(text: str) -> str:
    if not text.strip() or len(text) > 128 or not text.isprintable():
        raise argparse.ArgumentTypeError("must be 1 to 128 printable characters")
    return text
