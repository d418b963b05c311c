"""Serve Tiny Shop (FastAPI) with uvicorn: ``python -m examples.fastapi_shop [--port 8000]``.

Against a sandbox you already run: ``AFFY_API_URL=http://127.0.0.1:8765 AFFY_CLIENT_ID=1
AFFY_API_KEY=... python -m examples.fastapi_shop``. With ``--sandbox`` an embedded sandbox is
started on a free port and the shop points at it. Equivalent without this script:
``uvicorn --factory examples.fastapi_shop:create_app``.
"""

from __future__ import annotations

import argparse
import os

import uvicorn

from . import create_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.fastapi_shop")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--sandbox", action="store_true", help="start an embedded sandbox")
    args = parser.parse_args()
    config: dict[str, object] = {}
    sandbox = None
    if args.sandbox:
        from affy_middleware.sandbox import SandboxServer

        sandbox = SandboxServer(port=0, api_key="shop-key").start()
        config = {"AFFY_API_URL": sandbox.url, "AFFY_CLIENT_ID": 1, "AFFY_API_KEY": "shop-key"}
        print(f"sandbox dashboard: {sandbox.url}/")
    elif "AFFY_API_URL" not in os.environ:
        parser.error("set AFFY_API_URL (and AFFY_CLIENT_ID, AFFY_API_KEY) or pass --sandbox")
    app = create_app(config)
    print(f"Tiny Shop (FastAPI): http://{args.host}:{args.port}/?ref=aff_demo")
    try:
        uvicorn.run(app, host=args.host, port=args.port)
    finally:
        if sandbox is not None:
            sandbox.stop()


if __name__ == "__main__":
    main()
