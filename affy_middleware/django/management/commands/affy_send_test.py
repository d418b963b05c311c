"""``manage.py affy_send_test``: ``affy send-test`` with Django's settings."""

from __future__ import annotations

from ...commands import AffyCommand


class Command(AffyCommand):
    help = "Run `affy send-test` with settings.AFFY_* over the AFFY_* environment."
    affy_command = "send-test"
