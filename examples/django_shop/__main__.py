"""Serve the Django Tiny Shop: ``python -m examples.django_shop [--asgi] [--port 8001]``.

WSGI (werkzeug's development server) by default, ``--asgi`` for uvicorn. With
``--sandbox`` an embedded sandbox is started on a free port and the shop points at it;
otherwise set ``AFFY_API_URL``, ``AFFY_CLIENT_ID`` and ``AFFY_API_KEY``. In production:
``gunicorn examples.django_shop.wsgi:application`` or
``uvicorn examples.django_shop.asgi:application``.
"""

from __future__ import annotations

import argparse
import os

from . import create_asgi_app, create_wsgi_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.django_shop")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--asgi", action="store_true", help="serve the ASGI app with uvicorn")
    parser.add_argument("--sandbox", action="store_true", help="start an embedded sandbox")
    args = parser.parse_args()
    sandbox = None
    if args.sandbox:
        from affy_middleware.sandbox import SandboxServer

        sandbox = SandboxServer(port=0, api_key="shop-key").start()
        os.environ.update(AFFY_API_URL=sandbox.url, AFFY_CLIENT_ID="1", AFFY_API_KEY="shop-key")
        print(f"sandbox dashboard: {sandbox.url}/")
    elif "AFFY_API_URL" not in os.environ:
        parser.error("set AFFY_API_URL (and AFFY_CLIENT_ID, AFFY_API_KEY) or pass --sandbox")
    print(f"Tiny Shop (Django): http://{args.host}:{args.port}/?ref=aff_demo")
    try:
        if args.asgi:
            import uvicorn

            uvicorn.run(create_asgi_app(), host=args.host, port=args.port)
        else:
            from werkzeug.serving import run_simple

            run_simple(args.host, args.port, create_wsgi_app(), threaded=True)
    finally:
        if sandbox is not None:
            sandbox.stop()


if __name__ == "__main__":
    main()
