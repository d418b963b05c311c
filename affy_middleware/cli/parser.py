"""The ``affy`` argument parser: the commands, their options and their help."""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import NoReturn

from .. import __version__
from .._settings import DEFAULT_API_URL
from . import arguments
from .outbox_parser import add_outbox_commands
from .output import EXIT_USAGE

__all__ = ["build_parser", "EXIT_CODES_HELP"]

EXIT_CODES_HELP = """\
exit codes:
  0    everything worked (doctor: every check passed)
  1    a check failed, AFFY refused a call, or AFFY could not be reached
  2    bad command-line arguments
  130  interrupted (Ctrl-C)
"""

_SETTINGS_HELP = """\
settings:
  Read from the environment (AFFY_CLIENT_ID, AFFY_API_KEY, AFFY_API_URL, AFFY_TIMEOUT, ...);
  --client-id, --api-key, --api-url and --timeout override them. The API key is never shown.
"""


def _para(text: str) -> str:
    return textwrap.fill(text, width=88)


class _Parser(argparse.ArgumentParser):
    """argparse, with ``affy: error:`` lines and exit code 2 on bad arguments."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _connection_options() -> _Parser:
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("connection (override the AFFY_* environment)")
    group.add_argument(
        "--api-url",
        type=arguments.api_url,
        metavar="URL",
        help=f"Tracking API base URL (AFFY_API_URL; default {DEFAULT_API_URL})",
    )
    group.add_argument(
        "--client-id",
        type=arguments.positive_int,
        metavar="ID",
        help="numeric client id (AFFY_CLIENT_ID)",
    )
    group.add_argument(
        "--api-key",
        type=arguments.api_key,
        metavar="KEY",
        help="API key (AFFY_API_KEY); never printed",
    )
    group.add_argument(
        "--timeout",
        type=arguments.seconds,
        metavar="SECONDS",
        help="seconds for one call to AFFY (AFFY_TIMEOUT; default 5)",
    )
    return parent


def _json_option() -> _Parser:
    parent = _Parser(add_help=False)
    parent.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout (for scripts)"
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The ``affy`` argument parser (``sandbox`` is handed to the sandbox's own parser)."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog="affy",
        description=_para(
            "Tools for affy_middleware: a local AFFY sandbox, a configuration check, "
            "a test event through the real delivery pipeline, and attribution look-ups."
        ),
        epilog=_SETTINGS_HELP + "\n" + EXIT_CODES_HELP,
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"affy_middleware {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    conn, js = _connection_options(), _json_option()

    commands.add_parser(
        "sandbox",
        help="run a local AFFY (API and dashboard) until Ctrl-C; `affy sandbox --help`",
        description="Run a local AFFY Tracking API with a dashboard at / until Ctrl-C.",
        add_help=False,
    )
    status = commands.add_parser(
        "status",
        parents=[conn, js],
        help="show which affiliate AFFY attributes a session to",
        description=_para(
            "Ask AFFY which affiliate, if any, a session is attributed to "
            "(GET /api/v1/tracking/status/SESSION_ID; needs the API key)."
        ),
        epilog="A session without an affiliate is an answer, not a failure: exit code 0.\n\n"
        + EXIT_CODES_HELP,
        formatter_class=formatter,
    )
    status.add_argument(
        "session_id",
        type=arguments.session_id,
        metavar="SESSION_ID",
        help="the visitor's session id (the affy_session_id cookie)",
    )
    commands.add_parser(
        "doctor",
        parents=[conn, js],
        help="check the settings, reach the API and verify the key",
        description=_para(
            "Check the AFFY settings of this environment, reach the Tracking API, "
            "verify the API key, and say what to fix. Sends no tracking event."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=formatter,
    )
    send = commands.add_parser(
        "send-test",
        parents=[conn, js],
        help="send a test click and registration through the real pipeline",
        description=_para(
            "Send a click and a registration (and, with --amount, a payment) for a new "
            "test session through the library's real delivery pipeline (the background "
            "dispatcher a web app uses), flush it, then read the attribution back with the "
            "status call. Against production AFFY this records real test data in your "
            "account: use a recognisable --affiliate reference."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=formatter,
    )
    send.add_argument(
        "--affiliate",
        type=arguments.reference,
        default="affy-send-test",
        metavar="REF",
        help="affiliate reference of the test click (default affy-send-test)",
    )
    send.add_argument(
        "--email",
        type=arguments.email,
        default="send-test@example.com",
        metavar="EMAIL",
        help="customer email of the test registration (default send-test@example.com)",
    )
    send.add_argument(
        "--amount",
        type=arguments.amount,
        metavar="AMOUNT",
        help="also send a payment lead of AMOUNT",
    )
    send.add_argument(
        "--wait",
        type=arguments.wait_seconds,
        default=15.0,
        metavar="SECONDS",
        help="how long to wait for delivery, 0 to not wait (default 15)",
    )
    add_outbox_commands(commands, conn, formatter)
    return parser
