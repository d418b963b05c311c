"""The arguments of ``affy relay`` and ``affy outbox ...`` (kept apart from parser.py)."""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

from ..delivery.outbox import DEFAULT_LEASE
from ..delivery.outbox.admin import parse_age

__all__ = ["add_outbox_commands"]

_WHERE = (
    "The outbox is AFFY_OUTBOX_URL (postgresql://... or sqlite:////path) or AFFY_SPOOL_PATH; "
    "its password is never printed."
)


def _age(text: str) -> float:
    try:
        return parse_age(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _lease(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0.5 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be 0.5 to 3600 seconds, got {text!r}")
    return value


def _positive(text: str) -> int:
    if not text.strip().isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def add_outbox_commands(commands: Any, conn: argparse.ArgumentParser, formatter: Any) -> None:
    """Add ``relay`` and ``outbox`` to the ``affy`` sub-commands."""
    relay = commands.add_parser(
        "relay",
        parents=[conn],
        help="deliver the outbox's events to AFFY until SIGTERM/SIGINT",
        description=textwrap.fill(
            "Deliver the events waiting in the outbox to AFFY, as every web process with "
            "the outbox does, without a web app: for a relay deployment. Stops on SIGTERM "
            "or SIGINT within AFFY_FLUSH_TIMEOUT, giving unsent rows back, exit code 0. " + _WHERE,
            88,
        ),
        formatter_class=formatter,
    )
    relay.add_argument("--verbose", action="store_true", help="debug logs and progress lines")
    relay.add_argument(
        "--lease",
        type=_lease,
        default=DEFAULT_LEASE,
        metavar="SECONDS",
        help=f"how long a claim holds if this relay stops renewing it (frozen, cut off): "
        f"then another takes its rows over (default {DEFAULT_LEASE:g})",
    )

    outbox = commands.add_parser(
        "outbox",
        help="the outbox: init, status, dead letters, retry, purge",
        description=textwrap.fill("Look after the outbox. " + _WHERE, 88),
        formatter_class=formatter,
    )
    actions = outbox.add_subparsers(dest="outbox_command", metavar="ACTION")
    actions.required = True
    init = actions.add_parser("init", help="create the outbox tables (as their owner)")
    init.add_argument(
        "--sql", action="store_true", help="print the PostgreSQL DDL instead of running it"
    )
    status = actions.add_parser("status", help="rows by state and kind, oldest age")
    dead = actions.add_parser("dead", help="list dead letters (newest first)")
    dead.add_argument("--limit", type=_positive, default=50, metavar="N", help="default 50")
    retry = actions.add_parser("retry", help="move dead letters back to the outbox")
    retry.add_argument("event_ids", nargs="*", metavar="EVENT_ID", help="these (or --all)")
    retry.add_argument("--all", action="store_true", help="every dead letter")
    purge = actions.add_parser("purge", help="delete old dead letters")
    purge.add_argument(
        "--older-than",
        type=_age,
        required=True,
        metavar="AGE",
        help="buried longer ago than AGE (3600, 30m, 12h, 7d, 2w)",
    )
    for action in (status, dead, retry, purge):
        action.add_argument("--json", action="store_true", help="print one JSON object")
    init.set_defaults(json=False)
