"""``manage.py djproject_outbox_tx STEP SESSION_ID AMOUNT``: a payment reported inside a
transaction whose database is also the outbox; prints what could be seen, as JSON.

Steps: ``rollback`` (the block rolls back), ``commit`` (it commits, then the command
flushes), ``crash`` (it commits, then the process ends at once: no flush, no shutdown),
``drain`` (no report: deliver what the outbox holds, as any relay would), ``broken``
(the outbox table is dropped first: the row cannot be written in the transaction; the
app's own write in the same transaction must still commit), ``savepoint`` (reported in a
savepoint that rolls back, inside a block that commits), ``outer-rollback`` (reported in
a savepoint that commits, inside a block that rolls back), ``other-commit`` and
``other-rollback`` (reported in a block on the database ``other``, not the outbox's:
the event goes when that block commits, and not at all if it rolls back).
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, connection, connections, transaction

import affy_middleware
from affy_middleware import delivery
from affy_middleware.django.conf import configured


class Rollback(Exception):
    pass


def rows(session_id: str, *, outside: bool = False) -> int | None:
    """Outbox rows of the session, through Django's connection or a separate one; None
    when Django's database has no outbox table (the outbox is elsewhere)."""
    sql = "SELECT count(*) FROM affy_outbox WHERE order_key = %s"
    if not outside:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, [session_id])
                return int(cursor.fetchone()[0])
        except DatabaseError:
            return None
    if connection.vendor == "sqlite":
        with sqlite3.connect(connection.settings_dict["NAME"]) as db:
            try:
                return int(db.execute(sql.replace("%s", "?"), (session_id,)).fetchone()[0])
            except sqlite3.OperationalError:  # no such table
                return None
    import psycopg

    with psycopg.connect(os.environ["DJPROJECT_PG_URL"]) as conn:
        try:
            return int(conn.execute(sql, (session_id,)).fetchone()[0])
        except psycopg.errors.UndefinedTable:
            return None


class Command(BaseCommand):
    def add_arguments(self, parser: CommandParser) -> None:
        steps = ["rollback", "commit", "crash", "drain", "broken", "savepoint", "outer-rollback"]
        steps += ["other-commit", "other-rollback"]
        parser.add_argument("step", choices=steps)
        parser.add_argument("session_id")
        parser.add_argument("amount", nargs="?", default="1")

    def handle(self, *args: Any, **options: Any) -> None:
        step, session_id = options["step"], options["session_id"]
        backend = delivery.backend_for(configured())
        backend.start()  # the outbox opens (and creates its tables) off this thread
        seen: dict[str, Any] = {"outbox": repr(backend.app_outbox())}
        if step == "drain":
            seen["delivered"] = affy_middleware.flush(30)
            seen["after"] = rows(session_id)
            self.stdout.write(json.dumps(seen))
            return
        if step == "broken":
            affy_middleware.flush(30)  # the outbox is open: its keeper made the tables
            with connection.cursor() as cursor:
                cursor.execute("DROP TABLE affy_outbox")
                cursor.execute("CREATE TABLE IF NOT EXISTS signup (email TEXT)")
        if step in ("savepoint", "outer-rollback"):
            self.nested(step, session_id, options["amount"], seen)
            return
        if step in ("other-commit", "other-rollback"):
            self.other(step, session_id, options["amount"], seen)
            return
        try:
            with transaction.atomic():
                seen["accepted"] = affy_middleware.report_payment(
                    options["amount"], session_id=session_id
                )
                if step == "broken":  # the app goes on writing in its transaction
                    with connection.cursor() as cursor:
                        cursor.execute("INSERT INTO signup (email) VALUES (%s)", ["b@x.org"])
                seen["inside"] = rows(session_id)
                seen["outside_before_commit"] = rows(session_id, outside=True)
                if step == "rollback":
                    raise Rollback
        except Rollback:
            pass
        seen["after_transaction"] = rows(session_id)
        if step == "broken":
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM signup")
                seen["signups"] = int(cursor.fetchone()[0])
        if step == "crash":  # committed; the process dies before anything else runs
            sys.stdout.write(json.dumps(seen))
            sys.stdout.flush()
            os._exit(0)
        seen["delivered"] = affy_middleware.flush(30)
        seen["after"] = rows(session_id)
        seen["stats"] = affy_middleware.stats()
        self.stdout.write(json.dumps(seen))

    def other(self, step: str, session_id: str, amount: str, seen: dict[str, Any]) -> None:
        """The app's data on another database: the event is tied to that one's block."""
        try:
            with transaction.atomic(using="other"):
                with connections["other"].cursor() as cursor:
                    cursor.execute("CREATE TABLE IF NOT EXISTS signup (email TEXT)")
                    cursor.execute("INSERT INTO signup (email) VALUES (%s)", ["o@x.org"])
                seen["accepted"] = affy_middleware.report_payment(amount, session_id=session_id)
                seen["stats_inside"] = affy_middleware.stats()["enqueued"]
                if step == "other-rollback":
                    raise Rollback
        except Rollback:
            pass
        seen["stats_after"] = affy_middleware.stats()["enqueued"]
        seen["delivered"] = affy_middleware.flush(30)
        seen["after"] = rows(session_id)
        self.stdout.write(json.dumps(seen))

    def nested(self, step: str, session_id: str, amount: str, seen: dict[str, Any]) -> None:
        """A savepoint inside the block: the row goes with whichever of them rolls back."""
        try:
            with transaction.atomic():
                try:
                    with transaction.atomic():  # a savepoint
                        seen["accepted"] = affy_middleware.report_payment(
                            amount, session_id=session_id
                        )
                        seen["in_savepoint"] = rows(session_id)
                        if step == "savepoint":
                            raise Rollback
                except Rollback:
                    pass
                seen["inside"] = rows(session_id)  # after the savepoint, in the block
                if step == "outer-rollback":
                    raise Rollback
        except Rollback:
            pass
        seen["after_transaction"] = rows(session_id)
        seen["delivered"] = affy_middleware.flush(30)
        seen["after"] = rows(session_id)
        self.stdout.write(json.dumps(seen))
