"""The types of the ``affy`` options: each checks one value and says what is wrong with it."""

from __future__ import annotations

import argparse
from decimal import Decimal

from .._errors import AffyConfigError
from .._settings import Settings
from .._wire import lead_value

__all__ = [
    "positive_int",
    "seconds",
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
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not 0 < value <= 300:
        raise argparse.ArgumentTypeError(f"must be from 0 to 300 seconds, got {text!r}")
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


def session_id(text: str) -> str:
    if not text.strip() or len(text) > 2048 or not text.isprintable():
        raise argparse.ArgumentTypeError(
            "must be a non-empty printable string of at most 2048 characters"
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
