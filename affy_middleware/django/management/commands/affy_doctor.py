"""``manage.py affy_doctor``: ``affy doctor`` with Django's settings."""

from __future__ import annotations

from ...commands import AffyCommand


class Command(AffyCommand):
    help = "Run `affy doctor` with settings.AFFY_* over the AFFY_* environment."
    affy_command = "doctor"
