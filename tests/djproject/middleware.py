"""A project's own subclass of the middleware, with a consent hook."""

from __future__ import annotations

from typing import Any

from affy_middleware.django import AffyMiddleware


def _consents(request: Any) -> bool:
    return bool(request.COOKIES.get("consent") == "yes")


class Consenting(AffyMiddleware):
    consent = staticmethod(_consents)
