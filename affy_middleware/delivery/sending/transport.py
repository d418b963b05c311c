"""How one event reaches AFFY: the keep-alive HTTP client, made on first use.

One per backend and process, shared by its sender threads, behind the fork fence: a fork
never lands in the middle of an HTTP call.
"""

from __future__ import annotations

import threading

# Imported here, not lazily in a sender thread: a fork (gunicorn --preload) that lands
# while a thread is half-way through an import leaves the child a half-initialised module.
import httpcore  # noqa: F401  (httpx imports it lazily, on the first client)

from ..._errors import AffyNetworkError
from ..._settings import Settings
from ..._wire import Event
from ...client import AffyClient
from ..base import Sender
from ..support.fork import HttpFence
from ..support.logs import LogLimiter, logger
from .clicks import StatusCheck

__all__ = ["ClientTransport"]


class ClientTransport:
    """Sends events with an ``AffyClient`` (or ``send``, for tests and benchmarks)."""

    def __init__(
        self,
        settings: Settings,
        log: LogLimiter,
        send: Sender | None = None,
        status: StatusCheck | None = None,
    ) -> None:
        self._settings = settings
        self._log = log
        self._send_override = send
        self._status_override = status
        self._lock = threading.Lock()  # not the breaker's: nobody waits on this but here
        self.client: AffyClient | None = None
        self.fence = HttpFence()

    def send(self, event: Event) -> object:
        """Send one event; raises the ``AffyAPIError`` family."""
        with self.fence.call():
            return self._sender()(event)

    @property
    def status_check(self) -> StatusCheck | None:
        """Asks AFFY whether a session has its click; None with an injected ``send`` and
        no ``status`` (tests: their leads are not held)."""
        if self._status_override is not None:
            return self._status_override
        if self._send_override is not None:
            return None
        return self._has_click

    def _has_click(self, session_id: str) -> bool:
        with self.fence.call():
            client = self._client()
            if client is None:
                raise AffyNetworkError("cannot create the HTTP client")
            return client.status(session_id).has_affiliate

    def _client(self) -> AffyClient | None:
        client = self.client
        if client is None:
            with self._lock:
                client = self.client
                if client is None:
                    try:
                        client = self.client = AffyClient(self._settings)
                    except Exception as exc:  # retried like a network error
                        self._log.warn("client", "cannot create the HTTP client: %r", exc)
                        return None
        return client

    def _sender(self) -> Sender:
        if self._send_override is not None:
            return self._send_override
        client = self._client()
        if client is None:
            return _failing(AffyNetworkError("cannot create the HTTP client"))
        return client.send_event

    def close(self) -> None:
        """Close the HTTP client (no thread may be using it any more)."""
        client, self.client = self.client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # closing must not raise at exit
                logger.debug("affy_middleware: closing the client failed", exc_info=True)


def _failing(error: Exception) -> Sender:
    def send(event: Event) -> object:
        raise error

    return send
