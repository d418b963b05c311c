"""``affy sandbox``: hand over to the sandbox's own command line, under the name ``affy``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .output import EXIT_USAGE

__all__ = ["run"]

_SANDBOX_EPILOG = """\
The first line of output is the URL it listens on; the dashboard is at that URL's /.
Point an app at it with AFFY_API_URL=<url> AFFY_CLIENT_ID=1 (any client id works) and, if
you passed --api-key, AFFY_API_KEY=<the same key>.

exit codes:
  0    stopped by Ctrl-C or SIGTERM
  1    could not start (the port is taken, the database file cannot be opened)
  2    bad command-line arguments
"""


def run(argv: Sequence[str]) -> int:
    """Hand over to the sandbox's own ``main``; its options are checked (and ``--help``
    printed) under the name ``affy sandbox`` first."""
    from ..sandbox.__main__ import build_parser as sandbox_parser
    from ..sandbox.__main__ import main as sandbox_main

    parser = sandbox_parser(prog="affy sandbox")
    parser.epilog = _SANDBOX_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    try:
        parser.parse_args(list(argv))
    except SystemExit as exc:  # --help, or bad options (exit code 2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return sandbox_main(list(argv), prog="affy")
