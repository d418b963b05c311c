"""``manage.py affy_outbox``: ``affy outbox`` with Django's settings."""

from __future__ import annotations

from ...commands import AffyCommand


class Command(AffyCommand):
    help = "Run `affy outbox` with settings.AFFY_* over the AFFY_* environment."
    affy_command = "outbox"
