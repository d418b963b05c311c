"""``manage.py djproject_pay SESSION_ID AMOUNT``: a payment reported from a job, with the
AFFY settings only in ``settings.py``; prints whether it was accepted and delivered."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

import affy_middleware


class Command(BaseCommand):
    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("session_id")
        parser.add_argument("amount")

    def handle(self, *args: Any, **options: Any) -> None:
        accepted = affy_middleware.report_payment(
            options["amount"], email="job@example.com", session_id=options["session_id"]
        )
        delivered = affy_middleware.flush(30)
        self.stdout.write(f"accepted={accepted} delivered={delivered}")
