"""The response-status rule: a decorated view succeeded when its status is below 400.

A framework response carries its status (``status_code``, or ``status`` as an int or a
``"404 NOT FOUND"`` line); so does a Flask-style tuple ``(body, status[, headers])``. A
return value that carries none (``None``, a dict, a string) counts as success, unless
the framework let the view set the status elsewhere: FastAPI's injected ``Response``
(``response.status_code = 409``, then ``return {...}``). Such places are *status sources*,
registered by the integration (``affy_middleware.fastapi``), like the field sources.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from .fields import import_integrations

__all__ = ["response_status", "failed", "NO_STATUS", "StatusSource", "register_status_source"]

StatusSource = Callable[[tuple[Any, ...], Mapping[str, Any]], "int | None"]
"""``source(view_args, view_kwargs) -> status`` the view set outside its return value, or None."""

_status_sources: list[StatusSource] = []


def register_status_source(source: StatusSource) -> None:
    """Add a place a view may set its status besides its return value (integrations)."""
    if source not in _status_sources:
        _status_sources.insert(0, source)


#: Return values ``response_status`` gives None for, whatever they hold.
NO_STATUS: Final = frozenset({str, bytes, dict, list, type(None)})


def response_status(result: Any) -> int | None:
    """The HTTP status a view's return value carries, or None when it carries none.

    Framework responses (``status_code``; a ``status`` int or ``"404 NOT FOUND"``) and
    Flask-style tuples ``(body, status)`` / ``(body, status, headers)``.
    """
    if isinstance(result, tuple):
        if len(result) >= 2 and isinstance(result[1], (int, str)):
            return _status_number(result[1])
        return response_status(result[0]) if result else None
    if isinstance(result, (str, bytes, dict, list)) or result is None:
        return None
    code = getattr(result, "status_code", None)
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    return _status_number(getattr(result, "status", None))


def failed(
    result: Any, args: tuple[Any, ...] = (), kwargs: Mapping[str, Any] | None = None
) -> bool:
    """Whether the view failed (a status of 400 or more): its return value says so, or,
    when that carries no status, a status source over its arguments does."""
    if type(result) in NO_STATUS:  # a plain body (or None) carries no status of its own
        status = _injected_status(args, kwargs) if kwargs else None
    else:
        status = response_status(result)
    return status is not None and status >= 400


def _injected_status(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int | None:
    import_integrations()  # a framework's status source registers when it is imported
    for source in _status_sources:
        status = source(args, kwargs)
        if status is not None:
            return status
    return None


def _status_number(status: object) -> int | None:
    if isinstance(status, bool):
        return None
    if isinstance(status, int):
        return status
    if isinstance(status, str):
        head = status.strip().split(" ", 1)[0]
        return int(head) if head.isdigit() else None
    return None
