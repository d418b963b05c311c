"""The ``affy`` command: ``affy sandbox``, ``affy status``, ``affy doctor``, ``affy send-test``.

Settings come from the ``AFFY_*`` environment variables; ``--api-url``, ``--client-id``,
``--api-key`` and ``--timeout`` override them. The API key is never printed. Exit codes:
0 ok, 1 a check or call failed, 2 bad command-line arguments, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import sys
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NoReturn, TextIO

from . import delivery as _delivery
from ._client import AffyClient, StatusResult
from ._decorators import report_payment, report_registration
from ._errors import (
    AffyAPIError,
    AffyAuthError,
    AffyConfigError,
    AffyNetworkError,
    AffyNotFoundError,
    AffyRateLimitError,
    AffyServerError,
    AffyTimeoutError,
)
from ._resolution import configure_default
from ._settings import DEFAULT_API_URL, Settings, _is_loopback
from ._wire import Event, click_body, lead_value

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE"]

EXIT_OK = 0
#: A check failed, AFFY refused a call, or it could not be reached.
EXIT_FAILED = 1
#: Bad command-line arguments (argparse's own code).
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_EXIT_CODES = """\
exit codes:
  0    everything worked (doctor: every check passed)
  1    a check failed, AFFY refused a call, or AFFY could not be reached
  2    bad command-line arguments
  130  interrupted (Ctrl-C)
"""

_SANDBOX_EPILOG = """\
The first line of output is the URL it listens on; the dashboard is at that URL's /.
Point an app at it with AFFY_API_URL=<url> AFFY_CLIENT_ID=1 (any client id works) and, if
you passed --api-key, AFFY_API_KEY=<the same key>.

exit codes:
  0    stopped by Ctrl-C or SIGTERM
  1    could not start (the port is taken, the database file cannot be opened)
  2    bad command-line arguments
"""

_SETTINGS_HELP = """\
settings:
  Read from the environment (AFFY_CLIENT_ID, AFFY_API_KEY, AFFY_API_URL, AFFY_TIMEOUT, ...);
  --client-id, --api-key, --api-url and --timeout override them. The API key is never shown.
"""

_FIX_CLIENT_ID = (
    "export AFFY_CLIENT_ID=<your numeric client id> (AFFY dashboard, Settings > Tracking), "
    "or pass --client-id"
)
_FIX_KEY = (
    "copy the API key again from your AFFY dashboard and export AFFY_API_KEY=<key> "
    "(or pass --api-key); for a local sandbox, use the key it was started with (--api-key)"
)


class _Failure(Exception):
    """A problem to report in one line, with what to do about it."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


# -- argument types -------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = text.strip()
    if not value.isdigit() or int(value) <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(value)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not 0 < value <= 300:
        raise argparse.ArgumentTypeError(f"must be from 0 to 300 seconds, got {text!r}")
    return value


def _api_url(text: str) -> str:
    try:
        return Settings(api_url=text).api_url
    except AffyConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).split(" ", 2)[-1]) from None


def _api_key(text: str) -> str:
    try:
        Settings(api_key=text)
    except AffyConfigError:  # the message never echoes the key; neither do we
        raise argparse.ArgumentTypeError(
            "must be a non-empty string without spaces or control characters"
        ) from None
    return text


def _amount(text: str) -> Decimal:
    try:
        return lead_value(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _session_id(text: str) -> str:
    if not text.strip() or len(text) > 2048 or not text.isprintable():
        raise argparse.ArgumentTypeError(
            "must be a non-empty printable string of at most 2048 characters"
        )
    return text


def _email(text: str) -> str:
    value = text.strip()
    if "@" not in value or len(value) > 254 or not value.isprintable() or " " in value:
        raise argparse.ArgumentTypeError(f"must be an email address, got {text!r}")
    return value


def _reference(text: str) -> str:
    if not text.strip() or len(text) > 128 or not text.isprintable():
        raise argparse.ArgumentTypeError("must be 1 to 128 printable characters")
    return text


# -- the parser -----------------------------------------------------------------------------


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
        type=_api_url,
        metavar="URL",
        help=f"Tracking API base URL (AFFY_API_URL; default {DEFAULT_API_URL})",
    )
    group.add_argument(
        "--client-id", type=_positive_int, metavar="ID", help="numeric client id (AFFY_CLIENT_ID)"
    )
    group.add_argument(
        "--api-key", type=_api_key, metavar="KEY", help="API key (AFFY_API_KEY); never printed"
    )
    group.add_argument(
        "--timeout",
        type=_seconds,
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
        epilog=_SETTINGS_HELP + "\n" + _EXIT_CODES,
        formatter_class=formatter,
    )
    from . import __version__

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
        + _EXIT_CODES,
        formatter_class=formatter,
    )
    status.add_argument(
        "session_id",
        type=_session_id,
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
        epilog=_EXIT_CODES,
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
        epilog=_EXIT_CODES,
        formatter_class=formatter,
    )
    send.add_argument(
        "--affiliate",
        type=_reference,
        default="affy-send-test",
        metavar="REF",
        help="affiliate reference of the test click (default affy-send-test)",
    )
    send.add_argument(
        "--email",
        type=_email,
        default="send-test@example.com",
        metavar="EMAIL",
        help="customer email of the test registration (default send-test@example.com)",
    )
    send.add_argument(
        "--amount", type=_amount, metavar="AMOUNT", help="also send a payment lead of AMOUNT"
    )
    send.add_argument(
        "--wait",
        type=_seconds,
        default=15.0,
        metavar="SECONDS",
        help="how long to wait for delivery (default 15)",
    )
    return parser


# -- settings -------------------------------------------------------------------------------


def _settings(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    """The environment's settings with the command-line overrides (AffyConfigError if bad)."""
    overrides: dict[str, Any] = {}
    for name in ("api_url", "client_id", "api_key", "timeout"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    # A flag replaces its variable entirely: a malformed AFFY_CLIENT_ID does not matter
    # when --client-id is given.
    env = {
        key: text
        for key, text in (os.environ if environ is None else environ).items()
        if key.removeprefix("AFFY_").lower() not in overrides or not key.startswith("AFFY_")
    }
    return Settings.from_env(env, **overrides)


def _config_failure(exc: AffyConfigError) -> _Failure:
    return _Failure(
        f"invalid setting: {exc}",
        "correct or unset the variable named above (see `affy doctor`)",
    )


def _describe_api_error(exc: AffyAPIError, settings: Settings) -> _Failure:
    """One line for what went wrong talking to AFFY, and what to do."""
    where = settings.api_url
    if isinstance(exc, AffyTimeoutError):
        return _Failure(
            f"AFFY at {where} did not answer within {settings.timeout:g}s",
            "check the network path to AFFY (proxy, firewall), or raise --timeout / AFFY_TIMEOUT",
        )
    if isinstance(exc, AffyNetworkError):
        fix = "check AFFY_API_URL and that this machine can reach it (DNS, proxy, firewall)"
        if _is_local(settings):
            fix = (
                "start the local sandbox (`affy sandbox`) or point AFFY_API_URL / --api-url at "
                "the port it prints"
            )
        return _Failure(_first_line(exc.message), fix)
    if isinstance(exc, AffyAuthError):
        if settings.api_key is None:
            return _Failure(
                f"AFFY at {where} wants an API key (HTTP {exc.status_code}) and none is set",
                "export AFFY_API_KEY=<key> from your AFFY dashboard (or pass --api-key)",
            )
        return _Failure(
            f"AFFY at {where} rejected the API key (HTTP {exc.status_code}: "
            f"{_first_line(exc.message)})",
            _FIX_KEY,
        )
    if isinstance(exc, AffyNotFoundError):
        return _Failure(
            f"{where} answered 404 on an AFFY API path: it does not look like the AFFY "
            f"Tracking API ({_first_line(exc.message)})",
            f"set AFFY_API_URL to the API's base URL without a path, e.g. {DEFAULT_API_URL}",
        )
    if isinstance(exc, (AffyServerError, AffyRateLimitError)):
        return _Failure(
            f"AFFY at {where} is not answering normally ({exc})",
            "try again in a minute; events queued by your app are retried automatically",
        )
    return _Failure(f"AFFY at {where} refused the call ({exc})", None)


def _is_local(settings: Settings) -> bool:
    from urllib.parse import urlsplit

    return _is_loopback(urlsplit(settings.api_url).hostname or "")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else ""


# -- output ---------------------------------------------------------------------------------


def _print_json(data: Mapping[str, Any], out: TextIO) -> None:
    out.write(json.dumps(data, indent=2, default=_json_default) + "\n")
    out.flush()


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _report_failure(
    failure: _Failure, as_json: bool, extra: Mapping[str, Any] | None = None
) -> int:
    if as_json:
        data: dict[str, Any] = {"ok": False, "problem": failure.problem, "fix": failure.fix}
        data.update(extra or {})
        _print_json(data, sys.stdout)
    else:
        print(f"affy: error: {failure.problem}", file=sys.stderr)
        if failure.fix:
            print(f"  fix: {failure.fix}", file=sys.stderr)
    return EXIT_FAILED


def _settings_summary(settings: Settings) -> dict[str, Any]:
    return {
        "api_url": settings.api_url,
        "client_id": settings.client_id,
        "api_key": "set" if settings.api_key else None,
        "enabled": settings.enabled,
        "delivery": settings.delivery,
        "spool_path": settings.spool_path,
        "timeout": settings.timeout,
    }


# -- affy status ----------------------------------------------------------------------------


def _status_dict(result: StatusResult) -> dict[str, Any]:
    return {
        "sessionId": result.session_id,
        "hasAffiliate": result.has_affiliate,
        "affiliateReference": result.affiliate_reference,
        "clickId": result.click_id,
        "clickedAt": result.clicked_at,
    }


def _cmd_status(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
    except AffyConfigError as exc:
        return _report_failure(_config_failure(exc), args.json)
    try:
        with AffyClient(settings) as client:
            result = client.status(args.session_id)
    except AffyAPIError as exc:
        return _report_failure(_describe_api_error(exc, settings), args.json)
    if args.json:
        _print_json({"ok": True, **_status_dict(result)}, sys.stdout)
        return EXIT_OK
    if result.has_affiliate:
        print(f"session {args.session_id}: referred by affiliate {result.affiliate_reference}")
        print(f"  click id:   {result.click_id}")
        print(f"  clicked at: {result.clicked_at}")
    else:
        print(f"session {args.session_id}: no affiliate (AFFY has no click for this session)")
    return EXIT_OK


# -- affy doctor ----------------------------------------------------------------------------


@dataclass
class _Check:
    name: str
    status: str  # "ok" | "warn" | "fail"
    detail: str
    fix: str | None = None


@dataclass
class _Doctor:
    checks: list[_Check] = field(default_factory=list)

    def add(self, name: str, status: str, detail: str, fix: str | None = None) -> None:
        self.checks.append(_Check(name, status, detail, fix))

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)


def _doctor(args: argparse.Namespace) -> tuple[_Doctor, Settings | None]:
    doc = _Doctor()
    try:
        settings = _settings(args)
    except AffyConfigError as exc:
        doc.add("settings", "fail", str(exc), "correct or unset the variable named above")
        return doc, None
    from . import __version__

    version = sys.version.split()[0]
    doc.add("version", "ok", f"affy_middleware {__version__} on Python {version}")
    doc.add("settings", "ok", "every AFFY_* variable parses")
    if settings.client_id is None:
        doc.add("client id", "fail", "AFFY_CLIENT_ID is not set: tracking is off", _FIX_CLIENT_ID)
    else:
        doc.add("client id", "ok", str(settings.client_id))
    if not settings.enabled:
        doc.add("enabled", "warn", "AFFY_ENABLED is false: tracking is off", "unset AFFY_ENABLED")
    if settings.delivery == "off":
        doc.add(
            "delivery",
            "warn",
            "AFFY_DELIVERY=off: events are not sent",
            "unset AFFY_DELIVERY (thread) or set it to sync for scripts and serverless",
        )
    else:
        doc.add("delivery", "ok", settings.delivery)
    if settings.spool_path is not None:
        directory = os.path.dirname(os.path.abspath(settings.spool_path))
        if not os.path.isdir(directory) or not os.access(directory, os.W_OK | os.X_OK):
            doc.add(
                "spool",
                "fail",
                f"AFFY_SPOOL_PATH's directory {directory} does not exist or is not writable",
                "create the directory for the spool file, writable by the app's user",
            )
        else:
            doc.add("spool", "ok", settings.spool_path)
    where = "local sandbox" if _is_local(settings) else "remote"
    doc.add("api url", "ok", f"{settings.api_url} ({where})")
    _doctor_reach(doc, settings)
    return doc, settings


def _doctor_reach(doc: _Doctor, settings: Settings) -> None:
    """Reach the API with a status call for a made-up session: it proves the URL is an AFFY
    API and, with a key, that the key is accepted. Records nothing at AFFY."""
    probe = "affy-doctor-" + secrets.token_hex(8)
    started = time.monotonic()
    try:
        with AffyClient(settings) as client:
            result = client.status(probe)
    except AffyAuthError as exc:
        doc.add("reach", "ok", f"{settings.api_url} answers (HTTP {exc.status_code})")
        failure = _describe_api_error(exc, settings)
        doc.add("api key", "fail", failure.problem, failure.fix)
        return
    except AffyAPIError as exc:
        failure = _describe_api_error(exc, settings)
        doc.add("reach", "fail", failure.problem, failure.fix)
        return
    elapsed = (time.monotonic() - started) * 1000
    if result.session_id != probe:
        doc.add(
            "reach",
            "fail",
            f"{settings.api_url} answered, but not like the AFFY Tracking API (no sessionId)",
            f"set AFFY_API_URL to the API's base URL, e.g. {DEFAULT_API_URL}",
        )
        return
    doc.add("reach", "ok", f"{settings.api_url} answered the status call in {elapsed:.0f} ms")
    if settings.api_key is None:
        doc.add(
            "api key",
            "warn",
            "AFFY_API_KEY is not set: tracking calls work, the status call may not",
            "export AFFY_API_KEY=<key> from your AFFY dashboard (or pass --api-key)",
        )
    else:
        doc.add("api key", "ok", "accepted")


def _cmd_doctor(args: argparse.Namespace) -> int:
    doc, settings = _doctor(args)
    if args.json:
        _print_json(
            {
                "ok": doc.ok,
                "checks": [vars(c) for c in doc.checks],
                "settings": None if settings is None else _settings_summary(settings),
            },
            sys.stdout,
        )
        return EXIT_OK if doc.ok else EXIT_FAILED
    labels = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
    for check in doc.checks:
        print(f"[{labels[check.status]}] {check.name}: {check.detail}")
        if check.fix and check.status != "ok":
            print(f"       fix: {check.fix}")
    failed = [c for c in doc.checks if c.status == "fail"]
    if failed:
        print(f"affy doctor: {len(failed)} problem(s) to fix", file=sys.stderr)
        return EXIT_FAILED
    print("affy doctor: all checks passed")
    return EXIT_OK


# -- affy send-test -------------------------------------------------------------------------


class _Collect(logging.Handler):
    """Keeps the library's warnings (why AFFY refused an event) to report them in one place."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # a malformed log call must not break us
            self.messages.append(record.getMessage())


def _new_id() -> str:
    return secrets.token_urlsafe(18)


def _cmd_send_test(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
    except AffyConfigError as exc:
        return _report_failure(_config_failure(exc), args.json)
    client_id = settings.client_id
    if client_id is None:
        return _report_failure(
            _Failure("AFFY_CLIENT_ID is not set: nothing can be sent", _FIX_CLIENT_ID), args.json
        )
    # The pipeline a web app uses, switched on even where this environment switches it off,
    # and without the app's spool (its leftover rows are not ours to send).
    delivery = "sync" if settings.delivery == "sync" else "thread"
    settings = settings.replace(enabled=True, delivery=delivery, spool_path=None)
    session_id = "affy-send-test-" + secrets.token_hex(8)
    click_id = _new_id()
    steps: list[dict[str, Any]] = []
    human = not args.json

    def step(name: str, detail: str) -> None:
        steps.append({"step": name, "detail": detail})
        if human:
            print(f"  {name:<12} {detail}", flush=True)

    extra: dict[str, Any] = {"session_id": session_id, "steps": steps}
    if human:
        print(f"affy send-test: {settings.api_url} (client id {settings.client_id})")
    # 1. Reach AFFY first, so an unreachable API or a wrong key is one clear line, fast.
    try:
        with AffyClient(settings) as client:
            client.status(session_id)
    except AffyAPIError as exc:
        return _report_failure(_describe_api_error(exc, settings), args.json, extra)
    step("reach", "AFFY answers" + (" and accepts the key" if settings.api_key else ""))

    collect = _Collect()
    library_logger = logging.getLogger("affy_middleware")
    library_logger.addHandler(collect)
    try:
        before = dict(_delivery.stats())
        backend = _delivery.backend_for(settings)
        configure_default(settings)
        click = Event(
            kind="click",
            body=click_body(
                client_id,
                affiliate_reference=args.affiliate,
                click_id=click_id,
                session_id=session_id,
                clicked_url=f"https://shop.example/?ref={args.affiliate}",
                user_agent="affy send-test",
                source="affy-send-test",
            ),
            order_key=session_id,
        )
        accepted = [backend.submit(click)]
        step("click", f"queued (affiliate {args.affiliate}, session {session_id})")
        accepted.append(
            report_registration(
                email=args.email,
                name="AFFY send-test",
                customer_id="send-test",
                click_id=click_id,
                session_id=session_id,
            )
        )
        step("registration", f"queued (email {args.email})")
        if args.amount is not None:
            accepted.append(report_payment(args.amount, email=args.email, session_id=session_id))
            step("payment", f"queued (amount {args.amount})")
        if not all(accepted) and not backend.blocks:
            return _report_failure(
                _Failure("the delivery queue did not accept the test events", None),
                args.json,
                extra,
            )
        delivered = _delivery.flush(args.wait)
        after = dict(_delivery.stats())
    finally:
        library_logger.removeHandler(collect)
    counts = {k: after.get(k, 0) - before.get(k, 0) for k in ("sent", "retried", "failed")}
    counts["dropped"] = after.get("dropped", 0) - before.get("dropped", 0)
    counts["queued"] = after.get("queued", 0) + after.get("in_flight", 0)
    counts["flushed"] = int(delivered)
    extra["delivery"] = counts
    expected = len(accepted)
    if counts["dropped"] or counts["sent"] < expected:
        _delivery.shutdown(0.0)  # nothing may keep the process waiting at exit
        reasons = [m.removeprefix("affy_middleware: ") for m in collect.messages]
        if counts["dropped"]:
            why = "; ".join(dict.fromkeys(reasons)) or "dropped"
            fix = (
                "AFFY refused them (its reason is above): check that AFFY_CLIENT_ID is the "
                "client id of the account the API key belongs to"
            )
        else:
            why = f"not delivered within --wait {args.wait:g}s"
            fix = "run `affy doctor`; raise --wait if AFFY is slow"
        return _report_failure(
            _Failure(f"{counts['sent']} of {expected} test events delivered ({why})", fix),
            args.json,
            extra,
        )
    step("delivered", f"{counts['sent']} events sent, {counts['retried']} retried")
    # 3. Read the attribution back, as an app would ask AFFY about a visitor.
    try:
        with AffyClient(settings) as client:
            result = client.status(session_id)
    except AffyAPIError as exc:
        return _report_failure(_describe_api_error(exc, settings), args.json, extra)
    extra["status"] = _status_dict(result)
    if not result.has_affiliate or result.affiliate_reference != args.affiliate:
        return _report_failure(
            _Failure(
                f"AFFY does not attribute the test session to {args.affiliate!r} "
                f"(status says affiliate {result.affiliate_reference!r})",
                "the click was delivered but not linked: check AFFY_CLIENT_ID is the "
                "account the API key belongs to",
            ),
            args.json,
            extra,
        )
    step("attribution", f"AFFY attributes session {session_id} to {result.affiliate_reference}")
    if args.json:
        _print_json({"ok": True, **extra}, sys.stdout)
    else:
        print("affy send-test: ok")
    return EXIT_OK


# -- entry point ----------------------------------------------------------------------------


def _cmd_sandbox(argv: Sequence[str]) -> int:
    """Hand over to the sandbox's own ``main``; its options are checked (and ``--help``
    printed) under the name ``affy sandbox`` first."""
    from .sandbox.__main__ import build_parser as sandbox_parser
    from .sandbox.__main__ import main as sandbox_main

    parser = sandbox_parser(prog="affy sandbox")
    parser.epilog = _SANDBOX_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    try:
        parser.parse_args(list(argv))
    except SystemExit as exc:  # --help, or bad options (exit code 2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return sandbox_main(list(argv))


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "status": _cmd_status,
    "doctor": _cmd_doctor,
    "send-test": _cmd_send_test,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``affy`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        if args_list and args_list[0] == "sandbox":
            return _cmd_sandbox(args_list[1:])
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


if __name__ == "__main__":
    sys.exit(main())
