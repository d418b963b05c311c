"""The request's visit as a context variable: ``current_visit()`` and its setters.

The middleware sets it around the app call; the decorators read it. A ``ContextVar``, so
threads and asyncio tasks started within the request see the same visit.
"""

from __future__ import annotations

import contextvars

from .visit import Visit

__all__ = ["current_visit", "set_current_visit", "reset_current_visit"]

_current: contextvars.ContextVar[Visit | None] = contextvars.ContextVar("affy_visit", default=None)


def current_visit() -> Visit | None:
    """The visit of the request being handled, or None (no middleware, no attribution).

    Works in threads and asyncio tasks started within the request (contextvars)::

        from affy_middleware import current_visit
        visit = current_visit()
    """
    return _current.get()


def set_current_visit(visit: Visit | None) -> contextvars.Token[Visit | None]:
    return _current.set(visit)


def reset_current_visit(token: contextvars.Token[Visit | None]) -> None:
    _current.reset(token)
