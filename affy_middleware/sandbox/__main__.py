"""``python -m affy_middleware.sandbox``: serve a local AFFY until interrupted."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from ._server import SandboxServer

__all__ = ["main", "build_parser"]


def build_parser(prog: str = "python -m affy_middleware.sandbox") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Run a local AFFY Tracking API.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port, 0 for any free (8765)")
    parser.add_argument("--db", default=None, help="SQLite file to keep data in (memory)")
    parser.add_argument(
        "--api-key",
        default=None,
        help="require this Bearer key on status calls and reject wrong keys",
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds added to every API call"
    )
    parser.add_argument(
        "--error-rate",
        type=float,
        default=0.0,
        help="share of API calls (0..1) answered with a random 503",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT/SIGTERM. Prints the URL on the first line of stdout."""
    args = build_parser().parse_args(argv)
    if not 0 <= args.port <= 65535:
        print(f"error: --port must be from 0 to 65535, got {args.port}", file=sys.stderr)
        return 2
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
    except (OSError, ValueError) as exc:
        print(f"error: cannot start the sandbox: {exc}", file=sys.stderr)
        return 1
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
