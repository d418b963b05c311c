"""A Django ``HttpRequest`` as the attribution rules read it (a ``RequestView``).

Read from ``request.META`` (the same keys under WSGI and ASGI), except what Django decides
better than the server: the scheme is ``request.is_secure()`` (``SECURE_PROXY_SSL_HEADER``
makes the cookies ``Secure`` behind a TLS-terminating proxy) and the host is
``request.get_host()`` (``USE_X_FORWARDED_HOST``). The native request handed to a consent
hook and kept on the visit is the ``HttpRequest``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from ..attribution.referral import HeaderLookup
from ..attribution.request import wsgi_bytes

if TYPE_CHECKING:
    from django.http import HttpRequest

__all__ = ["DjangoRequest"]

#: Lower-case header name -> ``META`` key, for the headers the visit rules look at.
_META_HEADERS: Final = {
    "cookie": "HTTP_COOKIE",
    "user-agent": "HTTP_USER_AGENT",
    "referer": "HTTP_REFERER",
    "sec-purpose": "HTTP_SEC_PURPOSE",
    "purpose": "HTTP_PURPOSE",
    "x-purpose": "HTTP_X_PURPOSE",
    "x-moz": "HTTP_X_MOZ",
    "sec-fetch-mode": "HTTP_SEC_FETCH_MODE",
}


class DjangoRequest:
    """One ``HttpRequest``; ``query`` and ``cookie`` as the middleware read them."""

    __slots__ = ("native", "method", "query", "cookie", "_meta")

    def __init__(self, request: HttpRequest, query: str, cookie: str | None) -> None:
        self.native = request
        self._meta: dict[str, Any] = request.META
        self.method: str = request.method or "GET"
        self.query = query
        self.cookie = cookie

    @property
    def query_bytes(self) -> bytes:
        # QUERY_STRING is the raw query decoded as latin-1 (WSGI; Django's ASGI handler too).
        return wsgi_bytes(self.query)

    @property
    def scheme(self) -> str:
        return "https" if self.native.is_secure() else "http"

    @property
    def header(self) -> HeaderLookup:
        return self._header

    def _header(self, name: str) -> str | None:
        value = self._meta.get(_META_HEADERS[name])
        return value if isinstance(value, str) else None

    @property
    def host(self) -> str:
        try:
            host: str = self.native.get_host()
        except Exception:  # DisallowedHost: Django answers 400 itself; the click says so
            return "invalid-host"
        return host

    @property
    def path(self) -> bytes:
        path: str = self.native.path
        return path.encode("utf-8", "surrogateescape")
