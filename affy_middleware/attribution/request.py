"""Read-only views of one request, what :meth:`Attribution.decide` reads.

:class:`RequestView` is the interface: the method, the raw query, the ``Cookie`` header,
the scheme, a header lookup by lower-case name, the host and path (for the click's URL) and
the server's native request (handed to the consent hook and kept on the visit).
:class:`WSGIRequest` wraps an environ, :class:`ASGIRequest` a scope. Both are made per
request, so they keep to ``__slots__`` and compute what only a landing needs on demand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

from .referral import HeaderLookup

__all__ = ["RequestView", "WSGIRequest", "ASGIRequest", "wsgi_bytes"]


def wsgi_bytes(value: str) -> bytes:
    """A WSGI (latin-1) string back to the bytes the client sent."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:  # a server that decoded UTF-8 itself
        return value.encode("utf-8", "surrogateescape")


class RequestView(Protocol):
    """What the attribution rules read of a request."""

    @property
    def method(self) -> str:
        """Upper-case, e.g. ``"GET"``."""
        ...

    @property
    def query(self) -> bytes | str:
        """The raw query: bytes (ASGI) or the WSGI latin-1 string; empty when there is none."""
        ...

    @property
    def cookie(self) -> str | None:
        """The ``Cookie`` header (several joined with ``"; "``), or None."""
        ...

    @property
    def native(self) -> Any:
        """The WSGI environ or the ASGI scope."""
        ...

    @property
    def query_bytes(self) -> bytes: ...

    @property
    def scheme(self) -> str: ...

    @property
    def header(self) -> HeaderLookup:
        """The first value of a header, by lower-case name (``cookie`` excepted)."""
        ...

    @property
    def host(self) -> str: ...

    @property
    def path(self) -> bytes | str:
        """The raw path: bytes, or a WSGI-style (latin-1) string."""
        ...


#: Lower-case header name -> environ key, for the headers the visit rules look at.
_ENVIRON_HEADERS: Final = {
    "cookie": "HTTP_COOKIE",
    "user-agent": "HTTP_USER_AGENT",
    "referer": "HTTP_REFERER",
    "sec-purpose": "HTTP_SEC_PURPOSE",
    "purpose": "HTTP_PURPOSE",
    "x-purpose": "HTTP_X_PURPOSE",
    "x-moz": "HTTP_X_MOZ",
    "sec-fetch-mode": "HTTP_SEC_FETCH_MODE",
}


#: A value the view reads itself, unless the caller has read it already.
_UNREAD: Final[Any] = object()


class WSGIRequest:
    """A WSGI environ, as the rules read it.

    ``query`` and ``cookie``: ``QUERY_STRING`` (or ``""``) and ``HTTP_COOKIE``, when the
    caller has read them already (the middleware has); else they are read here.
    """

    __slots__ = ("native", "method", "query", "cookie")

    def __init__(
        self, environ: Mapping[str, Any], query: str = _UNREAD, cookie: str | None = _UNREAD
    ) -> None:
        self.native = environ
        self.method: str = environ.get("REQUEST_METHOD") or "GET"
        self.query: str = (environ.get("QUERY_STRING") or "") if query is _UNREAD else query
        self.cookie: str | None = environ.get("HTTP_COOKIE") if cookie is _UNREAD else cookie

    @property
    def query_bytes(self) -> bytes:
        # PEP 3333: the raw bytes arrive decoded as latin-1; a few servers decode UTF-8.
        return wsgi_bytes(self.query)

    @property
    def scheme(self) -> str:
        scheme: str = self.native.get("wsgi.url_scheme") or "http"
        return scheme

    @property
    def header(self) -> HeaderLookup:
        return self._header

    def _header(self, name: str) -> str | None:
        value = self.native.get(_ENVIRON_HEADERS[name])
        return value if isinstance(value, str) else None

    @property
    def host(self) -> str:
        environ = self.native
        host: str | None = environ.get("HTTP_HOST")
        if host:
            return host
        return f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}"

    @property
    def path(self) -> str:
        environ = self.native
        path: str = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        return path


#: Request header (lower-case bytes) -> the name the rules look it up by.
_ASGI_HEADERS: Final = {
    b"user-agent": "user-agent",
    b"referer": "referer",
    b"sec-purpose": "sec-purpose",
    b"purpose": "purpose",
    b"x-purpose": "x-purpose",
    b"x-moz": "x-moz",
    b"sec-fetch-mode": "sec-fetch-mode",
    b"host": "host",
}


class ASGIRequest:
    """An ASGI ``http`` scope, as the rules read it.

    ``query`` and ``cookie``: the ``query_string`` (or ``b""``) and the ``Cookie`` header
    text, when the caller has read them already. Every other header the rules may read is
    read in one pass when the view is made: the middleware makes one for a request that may
    land or may re-issue a click cookie, and the rules read most of them for either.
    """

    __slots__ = ("native", "method", "query", "query_bytes", "scheme", "cookie", "header", "_table")

    def __init__(
        self, scope: Mapping[str, Any], query: bytes = _UNREAD, cookie: str | None = _UNREAD
    ) -> None:
        self.native = scope
        self.method: str = scope["method"]
        if query is _UNREAD:
            query = scope.get("query_string") or b""
        self.query: bytes = query
        self.query_bytes: bytes = query
        self.scheme: str = scope.get("scheme") or "http"
        # The first value of each header the rules look at, and the cookies joined (HTTP/2
        # may split them); header names are lower-case in ASGI. Values, not properties:
        # a landing reads each of them (docs/benchmarks/reshape.md).
        table: dict[str, str] = {}
        wanted = _ASGI_HEADERS.get
        for raw_name, raw_value in scope["headers"]:
            name = wanted(raw_name)
            if name is not None:
                if name not in table:
                    table[name] = raw_value.decode("latin-1")
            elif raw_name == b"cookie":
                value = raw_value.decode("latin-1")
                seen = table.get("cookie")
                table["cookie"] = value if seen is None else f"{seen}; {value}"
        self._table = table
        #: The table's own dict.get: no Python frame per lookup (docs/benchmarks/asgi.md).
        self.header: HeaderLookup = table.get
        self.cookie: str | None = table.get("cookie") if cookie is _UNREAD else cookie

    @property
    def host(self) -> str:
        host = self._table.get("host")
        if host:
            return host
        server = self.native.get("server")
        return f"{server[0]}:{server[1]}" if server else ""

    @property
    def path(self) -> bytes:
        scope = self.native
        raw_path = scope.get("raw_path")
        if raw_path:
            return bytes(raw_path).split(b"?", 1)[0]
        return str(scope.get("path") or "/").encode("utf-8", "surrogateescape")
