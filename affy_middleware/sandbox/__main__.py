"""``python -m affy_middleware.sandbox``: serve a local AFFY until interrupted."""

from __future__ import annotations

import argparse
import errno
import math
import signal
import sqlite3
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from ._server import SandboxServer

__all__ = ["main", "build_parser", "EXIT_CANNOT_START"]

#: The sandbox could not start (the port is taken, the database cannot be opened).
EXIT_CANNOT_START = 1


def _port(text: str) -> int:
    if not text.strip().isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 0 to 65535 (0: any free), got {text!r}")
    return int(text)


def _number(text: str, low: float, high: float, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be {what} from {low:g} to {high:g}, got {text!r}")
    return value


def _latency(text: str) -> float:
    return _number(text, 0.0, 300.0, "a number of seconds")


def _share(text: str) -> float:
    return _number(text, 0.0, 1.0, "a share")


def build_parser(prog: str = "python -m affy_middleware.sandbox") -> argparse.ArgumentParser:
    """Bad options exit 2 with a usage line (argparse), before anything starts."""
    parser = argparse.ArgumentParser(prog=prog, description="Run a local AFFY Tracking API.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8765, help="port, 0 for any free (8765)")
    parser.add_argument("--db", default=None, help="SQLite file to keep data in (memory)")
    parser.add_argument(
        "--api-key",
        default=None,
        help="require this Bearer key on status calls and reject wrong keys",
    )
    parser.add_argument(
        "--latency", type=_latency, default=0.0, help="seconds (0..300) added to every API call"
    )
    parser.add_argument(
        "--error-rate",
        type=_share,
        default=0.0,
        help="share of API calls (0..1) answered with a random 503",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser


def cannot_start(exc: Exception, args: argparse.Namespace) -> tuple[str, str]:
    """The problem (naming the port or the file) and what to do, for ``affy: error:``."""
    if isinstance(exc, sqlite3.Error):
        return (
            f"cannot open the sandbox database {args.db!r}: {exc}",
            "pass --db a SQLite file in an existing, writable directory (it is created if "
            "missing), or leave --db out to keep the data in memory",
        )
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return (
            f"port {args.port} on {args.host} is taken (another sandbox or server listens "
            "there)",
            "pass --port 0 to take any free port (the first line printed is the URL), or "
            "stop what listens there",
        )
    return (
        f"cannot start the sandbox on {args.host}:{args.port}: {exc}",
        "check --host and --port (--port 0 takes any free port)",
    )


def main(argv: Sequence[str] | None = None, *, prog: str = "affy") -> int:
    """Serve until SIGINT/SIGTERM. Prints the URL on the first line of stdout."""
    args = build_parser().parse_args(argv)
    sandbox: SandboxServer | None = None
    try:
        sandbox = SandboxServer(
            port=args.port,
            api_key=args.api_key,
            db=args.db,
            host=args.host,
            latency=args.latency,
            error_rate=args.error_rate,
            quiet=not args.verbose,
        )
        sandbox.start()
    except (OSError, ValueError, sqlite3.Error) as exc:
        if sandbox is not None:
            sandbox.close()
        problem, fix = cannot_start(exc, args)
        print(f"{prog}: error: {problem}\n  fix: {fix}", file=sys.stderr)
        return EXIT_CANNOT_START
    done = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    print(f"AFFY sandbox listening on {sandbox.url}", flush=True)
    print(f"dashboard: {sandbox.url}/   storage: {sandbox.store.path}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
