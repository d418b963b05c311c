"""What the ``affy_*`` management commands share: run an ``affy`` command with Django's
settings.

``manage.py affy_doctor [--json]`` is ``affy doctor [--json]`` with ``settings.AFFY_*``
laid over the ``AFFY_*`` environment for the duration of the command. Every option Django
does not know is passed to the ``affy`` command as typed, so the commands follow the
command line as it grows (``manage.py affy_outbox ...`` runs ``affy outbox ...``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from django.core.management.base import BaseCommand, CommandError, CommandParser

from .. import cli
from . import conf

__all__ = ["AffyCommand"]


class AffyCommand(BaseCommand):  # type: ignore[misc]  # Django has no type stubs here
    """Runs ``affy <affy_command> ...`` with Django's settings; its exit code, if not 0,
    becomes the command's (``CommandError``)."""

    affy_command: ClassVar[str]
    # No system checks first: affy_doctor is how one finds out what a malformed setting is.
    requires_system_checks: ClassVar[list[str]] = []

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.epilog = (
            f"Other options are passed to `affy {self.affy_command}` "
            f"(`affy {self.affy_command} --help` lists them)."
        )
        known = parser.parse_known_args

        def parse_args(
            args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
        ) -> argparse.Namespace:
            options: argparse.Namespace
            options, rest = known(args, namespace)
            given = getattr(options, "args", None) or []
            options.args = [*given, *_without_separator(rest)]
            return options

        parser.parse_args = parse_args
        return parser

    def handle(self, *args: str, **options: Any) -> None:
        if self.affy_command not in _affy_commands():
            raise CommandError(
                f"`affy {self.affy_command}` is not part of this affy_middleware version; "
                "upgrade affy_middleware to use this command."
            )
        out = getattr(self.stdout, "_out", sys.stdout)
        err = getattr(self.stderr, "_out", sys.stderr)
        with (
            _environ(conf.environ_overlay(os.environ)),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            code = cli.main([self.affy_command, *args])
        if code:
            raise CommandError(f"affy {self.affy_command} exited with {code}", returncode=code)


def _without_separator(rest: list[str]) -> list[str]:
    return rest[1:] if rest[:1] == ["--"] else rest


def _affy_commands() -> frozenset[str]:
    for action in cli.build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return frozenset(action.choices)
    return frozenset()


@contextlib.contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` holds ``values`` inside the block and is restored after it."""
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
