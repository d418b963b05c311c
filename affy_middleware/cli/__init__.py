"""The ``affy`` command: ``affy sandbox``, ``status``, ``doctor``, ``send-test``, ``relay``
and ``outbox``.

Settings come from the ``AFFY_*`` environment variables; ``--api-url``, ``--client-id``,
``--api-key`` and ``--timeout`` override them. The API key is never printed. Exit codes:
0 ok, 1 a check or call failed, 2 bad command-line arguments, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from . import doctor, outbox, relay, sandbox, send_test, status
from .output import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from .parser import build_parser

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE"]

_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "status": status.run,
    "doctor": doctor.run,
    "send-test": send_test.run,
    "relay": relay.run,
    "outbox": outbox.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``affy`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        if args_list and args_list[0] == "sandbox":
            return sandbox.run(args_list[1:])
        parser = build_parser()
        try:
            args = parser.parse_args(args_list)
        except SystemExit as exc:  # --help, --version, bad arguments
            return exc.code if isinstance(exc.code, int) else EXIT_USAGE
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("affy: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # never a traceback at the user; say what it was
        print(f"affy: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
