"""``affy outbox init|status|dead|retry|purge``: the outbox, by hand, for either store."""

from __future__ import annotations

import argparse
import sys
import time

from .._errors import AffyConfigError
from ..delivery.outbox import OutboxError, open_admin
from ..delivery.outbox.admin import OutboxAdmin
from ..delivery.outbox.postgres.schema import PG_SCHEMA
from .config import settings_from
from .output import EXIT_OK, EXIT_USAGE, Failure, config_failure, print_json, report_failure

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    if args.outbox_command == "retry" and bool(args.event_ids) == args.all:
        print("affy outbox retry: error: give EVENT_ID... or --all", file=sys.stderr)
        return EXIT_USAGE
    if args.outbox_command == "init" and args.sql:
        print("-- affy_middleware: the PostgreSQL outbox's tables (idempotent)")
        print(PG_SCHEMA, end="")
        return EXIT_OK
    try:
        settings = settings_from(args)
    except AffyConfigError as exc:
        return report_failure(config_failure(exc), args.json)
    try:
        admin = open_admin(settings, create=args.outbox_command == "init")
    except OutboxError as exc:
        fix = "set AFFY_OUTBOX_URL to the outbox your web processes use"
        return report_failure(Failure(f"cannot open the outbox: {exc}", fix), args.json)
    try:
        return _ACTIONS[args.outbox_command](admin, args)
    except OutboxError as exc:
        hint = "create the tables with `affy outbox init`" if "exist" in str(exc) else None
        return report_failure(Failure(str(exc), hint), args.json)
    finally:
        admin.close()


def _init(admin: OutboxAdmin, args: argparse.Namespace) -> int:
    admin.init()
    print(f"affy outbox: tables ready in {admin.location}")
    return EXIT_OK


def _status(admin: OutboxAdmin, args: argparse.Namespace) -> int:
    status = admin.status()
    if args.json:
        print_json({"ok": True, "outbox": admin.location, **status.as_dict()}, sys.stdout)
        return EXIT_OK
    age = "-" if status.oldest_age is None else f"{status.oldest_age:.0f}s"
    print(f"outbox {admin.location}")
    print(f"  pending {status.pending}, leased {status.leased}, dead {status.dead}")
    print(f"  oldest row: {age}")
    for kind, counts in sorted(status.by_kind.items()):
        print(f"  {kind:<18} " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for reason, n in sorted(status.dead_by_reason.items()):
        print(f"  dead because {reason}: {n}")
    return EXIT_OK


def _dead(admin: OutboxAdmin, args: argparse.Namespace) -> int:
    letters = admin.dead(args.limit)
    if args.json:
        print_json({"ok": True, "dead": [d.as_dict() for d in letters]}, sys.stdout)
        return EXIT_OK
    if not letters:
        print("no dead letters")
    for d in letters:
        when = "-" if d.buried_at is None else time.strftime("%F %T", time.gmtime(d.buried_at))
        answer = "" if d.answer is None else f"  {d.answer[:200]}"
        print(f"{d.event_id}  {d.kind:<18} {when}Z  {d.reason}{answer}")
    return EXIT_OK


def _retry(admin: OutboxAdmin, args: argparse.Namespace) -> int:
    n = admin.retry(None if args.all else args.event_ids)
    if args.json:
        print_json({"ok": True, "retried": n}, sys.stdout)
    else:
        print(f"affy outbox: {n} dead letter(s) back in the outbox (same Idempotency-Key)")
    return EXIT_OK


def _purge(admin: OutboxAdmin, args: argparse.Namespace) -> int:
    n = admin.purge(args.older_than)
    if args.json:
        print_json({"ok": True, "purged": n}, sys.stdout)
    else:
        print(f"affy outbox: {n} dead letter(s) purged")
    return EXIT_OK


_ACTIONS = {
    "init": _init,
    "status": _status,
    "dead": _dead,
    "retry": _retry,
    "purge": _purge,
}
