"""Serve Tiny Shop: ``python -m examples.flask_shop [--port 5000] [--sandbox]``.

Against a sandbox you already run: ``AFFY_API_URL=http://127.0.0.1:8765 AFFY_CLIENT_ID=1
AFFY_API_KEY=... python -m examples.flask_shop``. With ``--sandbox`` an embedded sandbox is
started on a free port and the shop points at it.
"""

from __future__ import annotations

import argparse

from werkzeug.serving import run_simple

from .. import _runner
from . import create_app


def serve(args: argparse.Namespace, config: dict[str, object]) -> None:
    run_simple(args.host, args.port, create_app(config), threaded=True)


def main() -> None:
    _runner.run(_runner.parser("python -m examples.flask_shop", 5000), "Tiny Shop", serve)


if __name__ == "__main__":
    main()
