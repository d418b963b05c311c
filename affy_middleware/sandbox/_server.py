"""``SandboxServer``: the sandbox on a real port, in a daemon thread, for tests and demos."""

from __future__ import annotations

import socket
import threading
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .._settings import Settings
from ._app import SandboxApp
from ._faults import Faults
from ._store import Store

__all__ = ["SandboxServer"]


class _QuietHandler(WSGIRequestHandler):
    """No access log line per request (the sandbox keeps its own request log)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class SandboxServer:
    """A local AFFY on ``host:port`` (port 0 picks a free one), served from a thread.

    ::

        with SandboxServer(port=0, api_key="test-key") as sb:
            settings = sb.settings()          # client_id=1, api_key, api_url=sb.url
            ...
            assert sb.events("click")[0]["affiliate_reference"] == "abc123"

    ``db`` is a SQLite file (kept across restarts) or ``None`` for memory.
    """

    def __init__(
        self,
        port: int = 0,
        api_key: str | None = None,
        db: str | None = None,
        *,
        host: str = "127.0.0.1",
        latency: float = 0.0,
        error_rate: float = 0.0,
        quiet: bool = True,
    ) -> None:
        self.host = host
        self.api_key = api_key
        self.db = db
        self._requested_port = port
        self._quiet = quiet
        self.store = Store(db)
        self.faults = Faults()
        self.faults.set(latency=latency, error_rate=error_rate)
        self._stopping = threading.Event()
        self.app = SandboxApp(self.store, self.faults, api_key=api_key, stopping=self._stopping)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        state = self.url if self._server is not None else "stopped"
        return f"<SandboxServer {state} db={self.store.path!r}>"

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> SandboxServer:
        """Bind the port and serve in a daemon thread; returns once it accepts connections."""
        if self._server is not None:
            return self
        self._stopping.clear()
        handler = _QuietHandler if self._quiet else WSGIRequestHandler
        # Bind the socket ourselves: werkzeug turns a bind failure into print + SystemExit,
        # and callers (the CLI, the demo, tests) need a plain OSError they can report.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self._requested_port))
            sock.listen(128)
            server = make_server(
                self.host,
                self._requested_port,
                self.app,
                threaded=True,
                request_handler=handler,
                fd=sock.fileno(),
            )
        finally:
            # make_server duplicated the descriptor (socket.fromfd); ours is no longer needed.
            sock.close()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"affy-sandbox-{server.socket.getsockname()[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the port (stalled fault latency is cut short)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=10)

    def close(self) -> None:
        """Stop, then close the database."""
        self.stop()
        self.store.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sandbox is not running: call start() first")
        return int(self._server.socket.getsockname()[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    # -- what tests use -------------------------------------------------------------------

    def settings(self, **overrides: Any) -> Settings:
        """Settings pointing at this sandbox: client_id=1, its api_key and url, + overrides."""
        values: dict[str, Any] = {"client_id": 1, "api_key": self.api_key, "api_url": self.url}
        values.update(overrides)
        return Settings(**values)

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Accepted events, oldest first (``kind``: click, registration, registration_lead,
        payment). Each has kind, idempotency_key, body, received_at, affiliate_reference,
        session_id, click_id, lead_value, id and response."""
        return self.store.events(kind)

    def requests(self) -> list[dict[str, Any]]:
        """Every request on the API paths, failed ones too: method, path, status,
        idempotency_key, duplicate, time."""
        return self.store.requests()

    def duplicates(self) -> int:
        """Requests answered with an earlier response (same Idempotency-Key or click id)."""
        return self.store.duplicates()

    def unattributed(self) -> int:
        """Leads by session recorded before any click of their session (lost to their
        affiliate), as counted in ``/_sandbox/events``."""
        return self.store.unattributed()

    def set_faults(
        self,
        latency: float = 0.0,
        error_rate: float = 0.0,
        outage_seconds: float = 0.0,
        rate_limit: int = 0,
        retry_after: float | None = None,
        error_status: int = 503,
    ) -> None:
        """Replace the active faults; see :meth:`Faults.set`. Raises ValueError if malformed."""
        self.faults.set(
            latency=latency,
            error_rate=error_rate,
            outage_seconds=outage_seconds,
            rate_limit=rate_limit,
            retry_after=retry_after,
            error_status=error_status,
        )

    def clear_faults(self) -> None:
        self.faults.clear()

    def reset(self) -> None:
        """Forget every event, request and duplicate, and clear the faults."""
        self.store.reset()
        self.faults.clear()
