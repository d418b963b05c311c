"""What every command shares in its output: exit codes, the ``affy: error:`` line with its
``fix:``, ``--json``, and the one-line wording of AFFY's failures."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, TextIO

from .._errors import (
    AffyAPIError,
    AffyAuthError,
    AffyConfigError,
    AffyNetworkError,
    AffyNotFoundError,
    AffyRateLimitError,
    AffyServerError,
    AffyTimeoutError,
)
from .._settings import DEFAULT_API_URL, Settings
from .config import is_local

__all__ = [
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "EXIT_INTERRUPTED",
    "FIX_CLIENT_ID",
    "Failure",
    "config_failure",
    "describe_api_error",
    "print_json",
    "report_failure",
]

EXIT_OK = 0
#: A check failed, AFFY refused a call, or it could not be reached.
EXIT_FAILED = 1
#: Bad command-line arguments (argparse's own code).
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

FIX_CLIENT_ID = (
    "export AFFY_CLIENT_ID=<your numeric client id> (AFFY dashboard, Settings > Tracking), "
    "or pass --client-id"
)
_FIX_KEY = (
    "copy the API key again from your AFFY dashboard and export AFFY_API_KEY=<key> "
    "(or pass --api-key); for a local sandbox, use the key it was started with (--api-key)"
)


class Failure(Exception):
    """A problem to report in one line, with what to do about it."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


def print_json(data: Mapping[str, Any], out: TextIO) -> None:
    out.write(json.dumps(data, indent=2, default=_json_default) + "\n")
    out.flush()


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def report_failure(failure: Failure, as_json: bool, extra: Mapping[str, Any] | None = None) -> int:
    if as_json:
        data: dict[str, Any] = {"ok": False, "problem": failure.problem, "fix": failure.fix}
        data.update(extra or {})
        print_json(data, sys.stdout)
    else:
        print(f"affy: error: {failure.problem}", file=sys.stderr)
        if failure.fix:
            print(f"  fix: {failure.fix}", file=sys.stderr)
    return EXIT_FAILED


def config_failure(exc: AffyConfigError) -> Failure:
    return Failure(
        f"invalid setting: {exc}",
        "correct or unset the variable named above (see `affy doctor`)",
    )


def describe_api_error(exc: AffyAPIError, settings: Settings) -> Failure:
    """One line for what went wrong talking to AFFY, and what to do."""
    where = settings.api_url
    if isinstance(exc, AffyTimeoutError):
        return Failure(
            f"AFFY at {where} did not answer within {settings.timeout:g}s",
            "check the network path to AFFY (proxy, firewall), or raise --timeout / AFFY_TIMEOUT",
        )
    if isinstance(exc, AffyNetworkError):
        fix = "check AFFY_API_URL and that this machine can reach it (DNS, proxy, firewall)"
        if is_local(settings):
            fix = (
                "start the local sandbox (`affy sandbox`) or point AFFY_API_URL / --api-url at "
                "the port it prints"
            )
        return Failure(_first_line(exc.message), fix)
    if isinstance(exc, AffyAuthError):
        if settings.api_key is None:
            return Failure(
                f"AFFY at {where} wants an API key (HTTP {exc.status_code}) and none is set",
                "export AFFY_API_KEY=<key> from your AFFY dashboard (or pass --api-key)",
            )
        return Failure(
            f"AFFY at {where} rejected the API key (HTTP {exc.status_code}: "
            f"{_first_line(exc.message)})",
            _FIX_KEY,
        )
    if isinstance(exc, AffyNotFoundError):
        return Failure(
            f"{where} answered 404 on an AFFY API path: it does not look like the AFFY "
            f"Tracking API ({_first_line(exc.message)})",
            f"set AFFY_API_URL to the API's base URL without a path, e.g. {DEFAULT_API_URL}",
        )
    if isinstance(exc, (AffyServerError, AffyRateLimitError)):
        return Failure(
            f"AFFY at {where} is not answering normally ({exc})",
            "try again in a minute; events queued by your app are retried automatically",
        )
    return Failure(f"AFFY at {where} refused the call ({exc})", None)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else ""
