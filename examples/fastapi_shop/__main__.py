"""Serve Tiny Shop (FastAPI) with uvicorn: ``python -m examples.fastapi_shop [--port 8000]``.

Against a sandbox you already run: ``AFFY_API_URL=http://127.0.0.1:8765 AFFY_CLIENT_ID=1
AFFY_API_KEY=... python -m examples.fastapi_shop``. With ``--sandbox`` an embedded sandbox is
started on a free port and the shop points at it. Equivalent without this script:
``uvicorn --factory examples.fastapi_shop:create_app``.
"""

from __future__ import annotations

import argparse

import uvicorn

from .. import _runner
from . import create_app


def serve(args: argparse.Namespace, config: dict[str, object]) -> None:
    uvicorn.run(create_app(config), host=args.host, port=args.port)


def main() -> None:
    options = _runner.parser("python -m examples.fastapi_shop", 8000)
    _runner.run(options, "Tiny Shop (FastAPI)", serve)


if __name__ == "__main__":
    main()
