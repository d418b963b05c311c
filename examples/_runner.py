"""The shops' ``python -m examples.<shop>`` runner: ``--host``, ``--port`` and ``--sandbox``.

With ``--sandbox`` an embedded sandbox is started on a free port and the shop's AFFY
settings point at it; without it ``AFFY_API_URL`` (and ``AFFY_CLIENT_ID``,
``AFFY_API_KEY``) must be set in the environment.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

__all__ = ["SANDBOX_API_KEY", "parser", "run"]

SANDBOX_API_KEY = "shop-key"


def parser(prog: str, port: int) -> argparse.ArgumentParser:
    """The runner's options; a shop may add its own before calling :func:`run`."""
    result = argparse.ArgumentParser(prog=prog)
    result.add_argument("--host", default="127.0.0.1")
    result.add_argument("--port", type=int, default=port)
    result.add_argument("--sandbox", action="store_true", help="start an embedded sandbox")
    return result


def run(
    options: argparse.ArgumentParser,
    title: str,
    serve: Callable[[argparse.Namespace, dict[str, object]], None],
) -> None:
    """Parse the command line, start the sandbox if asked, and ``serve(args, config)``.

    ``config`` holds the ``AFFY_*`` settings of the embedded sandbox (empty without
    ``--sandbox``: the environment has them). The sandbox stops when ``serve`` returns.
    """
    args = options.parse_args()
    config: dict[str, object] = {}
    sandbox = None
    if args.sandbox:
        from affy_middleware.sandbox import SandboxServer

        sandbox = SandboxServer(port=0, api_key=SANDBOX_API_KEY).start()
        config = {"AFFY_API_URL": sandbox.url, "AFFY_CLIENT_ID": 1, "AFFY_API_KEY": SANDBOX_API_KEY}
        print(f"sandbox dashboard: {sandbox.url}/")
    elif "AFFY_API_URL" not in os.environ:
        options.error("set AFFY_API_URL (and AFFY_CLIENT_ID, AFFY_API_KEY) or pass --sandbox")
    print(f"{title}: http://{args.host}:{args.port}/?ref=aff_demo")
    try:
        serve(args, config)
    finally:
        if sandbox is not None:
            sandbox.stop()
