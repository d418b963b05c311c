"""The sandbox's WSGI app: the Tracking API, the admin endpoints and the dashboard."""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from .._wire import API_PATHS
from . import _api
from ._dashboard import render_dashboard
from ._faults import Faults, fault_args
from ._store import Accepted, Store
from ._validate import MAX_BODY, BadRequest, parse_json

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["SandboxApp", "dumps"]

logger = logging.getLogger("affy_middleware.sandbox")

_STATUS_PREFIX = API_PATHS["status"].split("{", 1)[0]
_POST_HANDLERS: dict[str, Callable[[Store, dict[str, Any], str, str | None], Accepted]] = {
    API_PATHS["click"]: _api.click,
    API_PATHS["registration"]: _api.registration,
    API_PATHS["registration_lead"]: _api.registration_lead,
    API_PATHS["payment"]: _api.payment,
}
#: Longest Idempotency-Key accepted.
MAX_KEY = 255


#: A too-large body is read and thrown away up to this size, so the client sees the 413.
DRAIN_LIMIT = 16 * 1024 * 1024


class _Request(Request):
    max_content_length = None


def _read_body(request: _Request) -> bytes:
    """The body, at most ``MAX_BODY`` bytes; a bigger one is a 413 naming the limit."""
    stream = request.stream
    data = stream.read(MAX_BODY + 1)
    if len(data) <= MAX_BODY:
        return data
    if (request.content_length or 0) <= DRAIN_LIMIT:
        drained = len(data)
        while drained <= DRAIN_LIMIT:
            chunk = stream.read(65536)
            if not chunk:
                break
            drained += len(chunk)
    raise BadRequest(
        f"body: request body is larger than {MAX_BODY} bytes", field="body", status=413
    )


def dumps(value: Any) -> str:
    """JSON text in which Decimals stay exact numbers (``99.00``)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    text = body if isinstance(body, str) else dumps(body)
    return Response(text, status=status, headers=headers, content_type="application/json")


def _error(
    status: int, error: str, message: str, field: str | None = None, **headers: str
) -> Response:
    body: dict[str, Any] = {"error": error, "message": message}
    if field is not None:
        body["field"] = field
    return _json(body, status, {k.replace("_", "-"): v for k, v in headers.items()})


class SandboxApp:
    """A local AFFY as a WSGI app. ``store`` and ``faults`` may be shared and inspected."""

    def __init__(
        self,
        store: Store,
        faults: Faults | None = None,
        *,
        api_key: str | None = None,
        stopping: threading.Event | None = None,
    ) -> None:
        self.store = store
        self.faults = faults or Faults()
        self._bearer = None if api_key is None else f"Bearer {api_key}".encode()
        self._stopping = stopping or threading.Event()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = _Request(environ)
        try:
            response = self._route(request)
        except Exception:  # a bug in the sandbox itself, never a client mistake
            logger.exception("sandbox: internal error on %s %s", request.method, request.path)
            response = _error(500, "Internal Server Error", "sandbox bug; see its log")
        return response(environ, start_response)

    def _route(self, request: _Request) -> Response:
        path = request.path
        if path.startswith("/api/"):
            return self._api(request)
        if path.startswith("/_sandbox/"):
            return self._admin(request)
        if path == "/" and request.method in ("GET", "HEAD"):
            html = render_dashboard(self.store, self.faults)
            return Response(html, content_type="text/html; charset=utf-8")
        return _error(404, "Not Found", f"no such page: {path[:200]}")

    # -- the Tracking API ---------------------------------------------------------------

    def _api(self, request: _Request) -> Response:
        key = request.headers.get("Idempotency-Key")
        duplicate = False
        try:
            delay, fault = self.faults.decide()
            if delay:
                self._stopping.wait(delay)
            if fault is not None:
                extra = (
                    {}
                    if fault.retry_after is None
                    else {"Retry-After": _header_seconds(fault.retry_after)}
                )
                response = _json(
                    {"error": fault.error, "message": fault.message}, fault.status, extra
                )
            else:
                response, duplicate = self._api_call(request, key)
        except BadRequest as exc:
            response = _error(exc.status, exc.error, exc.message, exc.field)
        except HTTPException as exc:  # 413 from the body size limit
            response = _error(exc.code or 400, exc.name, f"body: {exc.description}"[:300], "body")
        self.store.log_request(
            request.method,
            request.path,
            response.status_code,
            None if key is None else key[:MAX_KEY],
            duplicate,
        )
        return response

    def _api_call(self, request: _Request, key: str | None) -> tuple[Response, bool]:
        if key is not None and (not 0 < len(key) <= MAX_KEY or not key.isprintable()):
            raise BadRequest(
                f"Idempotency-Key: must be 1 to {MAX_KEY} printable characters",
                field="Idempotency-Key",
            )
        path = request.path
        if path.startswith(_STATUS_PREFIX) and path != _STATUS_PREFIX:
            if request.method not in ("GET", "HEAD"):
                raise BadRequest("use GET for the status call", status=405)
            self._check_auth(request)
            return _json(_api.status(self.store, path[len(_STATUS_PREFIX) :])), False
        handler = _POST_HANDLERS.get(path)
        if handler is None:
            raise BadRequest(f"no such API path: {path[:200]}", status=404)
        if request.method != "POST":
            raise BadRequest(f"use POST for {path}", status=405)
        self._check_auth(request)
        raw = _read_body(request)
        body = parse_json(raw)
        accepted = handler(self.store, body, raw.decode("utf-8"), key)
        if accepted.duplicate:
            return _json(accepted.response, 200, {"Idempotent-Replayed": "true"}), True
        return _json(accepted.response, 201), False

    def _check_auth(self, request: _Request) -> None:
        if self._bearer is None:
            return
        given = request.headers.get("Authorization")
        if given is None and request.method == "POST":
            return  # tracking calls identify themselves by clientId
        if given is None or not hmac.compare_digest(given.encode("utf-8", "replace"), self._bearer):
            raise BadRequest("Invalid or missing API key", status=401)

    # -- admin: faults, recorded data -----------------------------------------------------

    def _admin(self, request: _Request) -> Response:
        name = request.path[len("/_sandbox/") :]
        method = request.method
        try:
            if name == "faults" and method == "POST":
                self.faults.set(**fault_args(parse_json(_read_body(request))))
                return _json(self.faults.snapshot())
            if name == "faults" and method == "DELETE":
                self.faults.clear()
                return _json(self.faults.snapshot())
            if name == "faults" and method == "GET":
                return _json(self.faults.snapshot())
            if name == "events" and method == "GET":
                listed = self.store.events(request.args.get("kind"))
                unattributed = sum(event["unattributed"] for event in listed)
                return _json({"events": listed, "unattributed": unattributed})
            if name == "requests" and method == "GET":
                return _json({"requests": self.store.requests()})
            if name == "stats" and method == "GET":
                events, requests = self.store.counts()
                return _json(
                    {"duplicates": self.store.duplicates(), "events": events, "requests": requests}
                )
            if name == "reset" and method == "POST":
                self.store.reset()
                self.faults.clear()
                return _json({"success": True})
        except BadRequest as exc:
            return _error(exc.status, exc.error, exc.message, exc.field)
        except HTTPException as exc:
            return _error(exc.code or 400, exc.name, str(exc.description)[:300], "body")
        except (TypeError, ValueError) as exc:
            return _error(400, "Bad Request", str(exc)[:300])
        return _error(404, "Not Found", f"no such admin call: {method} {request.path[:200]}")


def _header_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
