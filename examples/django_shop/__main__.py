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

from .. import _runner
from . import create_asgi_app, create_wsgi_app


def serve(args: argparse.Namespace, config: dict[str, object]) -> None:
    # Django reads its AFFY_* settings from the environment (settings.py falls back to it).
    os.environ.update({name: str(value) for name, value in config.items()})
    if args.asgi:
        import uvicorn

        uvicorn.run(create_asgi_app(), host=args.host, port=args.port)
    else:
        from werkzeug.serving import run_simple

        run_simple(args.host, args.port, create_wsgi_app(), threaded=True)


def main() -> None:
    options = _runner.parser("python -m examples.django_shop", 8001)
    options.add_argument("--asgi", action="store_true", help="serve the ASGI app with uvicorn")
    _runner.run(options, "Tiny Shop (Django)", serve)


if __name__ == "__main__":
    main()
