"""The ASGI lifespan protocol, passed through, with a flush of the event queue at shutdown.

Run by :class:`~.asgi.AffyASGIMiddleware` for ``lifespan`` scopes (``flush_on_shutdown``):
the flush runs after the app's own shutdown handlers, which may report events too; an app
that does not speak lifespan (Django, plain apps) is answered for, so the server still
tells us when it stops.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

from .types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["run_lifespan", "Refusal"]

logger = logging.getLogger("affy_middleware")

_SHUTDOWN_DONE: Final = frozenset({"lifespan.shutdown.complete", "lifespan.shutdown.failed"})


async def run_lifespan(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    flush: Callable[[], Awaitable[bool]],
) -> None:
    """``app``'s lifespan, with ``flush()`` awaited once the app has shut down."""
    asked = False
    flushed = False

    async def receive_() -> Message:
        nonlocal asked
        asked = True
        return await receive()

    async def send_(message: Message) -> None:
        nonlocal flushed
        if message.get("type") in _SHUTDOWN_DONE and not flushed:
            # After the app's own shutdown handlers, which may report events too.
            flushed = True
            await flush()
        await send(message)

    try:
        await app(scope, receive_, send_)
    except Exception:
        if asked:
            raise
        logger.debug("affy_middleware: the app does not handle lifespan", exc_info=True)
    if not asked:
        # The app does not speak lifespan: answer for it, so the server still tells us
        # when it stops.
        await _answer(receive, send, flush)


async def _answer(receive: Receive, send: Send, flush: Callable[[], Awaitable[bool]]) -> None:
    for _ in range(8):  # startup, shutdown; a misbehaving server can't keep us here
        message = await receive()
        kind = message.get("type")
        if kind == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif kind == "lifespan.shutdown":
            await flush()
            await send({"type": "lifespan.shutdown.complete"})
            return


class Refusal:
    """The app of a middleware whose settings are malformed, built inside a running server:
    the lifespan startup fails with the error (the server stops before serving), and a
    request, on a server without lifespan, raises it."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            raise self.error
        message = await receive()
        if message.get("type") == "lifespan.startup":
            await send({"type": "lifespan.startup.failed", "message": str(self.error)})
