"""``Settings.on_error``: the app's callable, told of every event given up, guarded.

Called after the event is counted and outside every lock of the library, so the hook may
take its time or call ``stats()``; whatever it raises is logged (at most once a minute)
and never reaches the host app's request or our delivery threads.
"""

from __future__ import annotations

from collections.abc import Callable

from ..._wire import Event
from ..support.logs import LogLimiter

__all__ = ["ErrorHook", "REASONS"]

#: The reasons an event is given up (``stats()`` keys ``dropped_<reason>``).
REASONS = (
    "queue_full",
    "rejected",
    "click_unknown",
    "expired",
    "shutdown",
    "unsent",
    "malformed",
)


class ErrorHook:
    """Tells ``on_error(event, reason)``, if the app gave one, that ``event`` was given up."""

    __slots__ = ("_hook", "_log")

    def __init__(self, hook: Callable[[Event, str], object] | None, log: LogLimiter) -> None:
        self._hook = hook
        self._log = log

    def __call__(self, event: Event, reason: str) -> None:
        hook = self._hook
        if hook is None:
            return
        try:
            hook(event, reason)
        except Exception as exc:  # the app's bug must not become ours, nor flood its log
            self._log.warn(
                "on_error",
                "the on_error hook raised %s (for a %s event given up: %s)",
                type(exc).__name__,
                event.kind,
                reason,
                event=event,
            )
