"""The response-status rule: a decorated view succeeded when its status is below 400.

A framework response carries its status (``status_code``, or ``status`` as an int or a
``"404 NOT FOUND"`` line); so does a Flask-style tuple ``(body, status[, headers])``. A
return value that carries none (``None``, a dict, a string) counts as success.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["response_status", "failed", "NO_STATUS"]

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


def failed(result: Any) -> bool:
    """Whether the view's return value says it failed (a status of 400 or more)."""
    if type(result) in NO_STATUS:  # a plain body (or None) carries no status
        return False
    status = response_status(result)
    return status is not None and status >= 400


def _status_number(status: object) -> int | None:
    if isinstance(status, bool):
        return None
    if isinstance(status, int):
        return status
    if isinstance(status, str):
        head = status.strip().split(" ", 1)[0]
        return int(head) if head.isdigit() else None
    return None
