"""The request's visit as a context variable: ``current_visit()``, and the one place it is
set and reset around a request (:func:`call_with`, :func:`acall_with`).

The middlewares run the app through these; the decorators read it. A ``ContextVar``, so
threads and asyncio tasks started within the request see the same visit.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .visit import Visit

__all__ = [
    "current_visit",
    "set_current_visit",
    "reset_current_visit",
    "call_with",
    "acall_with",
    "visit_now",
]

T = TypeVar("T")

_current: contextvars.ContextVar[Visit | None] = contextvars.ContextVar("affy_visit", default=None)
#: ``current_visit()`` without a Python frame, for the adapters' pass-through (read only).
visit_now: Callable[[], Visit | None] = _current.get


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


def call_with(visit: Visit | None, func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` with ``current_visit()`` being ``visit``, reset when it returns or
    raises. No visit where none is set already (the common request): nothing to set."""
    if visit is None and _current.get() is None:
        return func(*args)
    token = _current.set(visit)
    try:
        return func(*args)
    finally:
        _current.reset(token)


async def acall_with(visit: Visit | None, func: Callable[..., Awaitable[T]], *args: Any) -> T:
    """:func:`call_with` for a coroutine function, awaited."""
    if visit is None and _current.get() is None:
        return await func(*args)
    token = _current.set(visit)
    try:
        return await func(*args)
    finally:
        _current.reset(token)
