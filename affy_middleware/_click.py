"""The click's reported text: the clicked URL, the referrer and the user agent.

What the click event sends to AFFY, made safe: the host checked (else ``invalid-host``), the
path and query percent-encoded where needed (a WSGI latin-1 path back to the client's
bytes first), the referrer and user agent cut to their limits and stripped of what is not
printable. Used by ``Attribution`` when it builds the click of a landing.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote

__all__ = ["MAX_URL_LENGTH", "MAX_USER_AGENT_LENGTH"]

#: Longest URL / user agent we forward to AFFY (the rest is cut).
MAX_URL_LENGTH: Final = 2048
MAX_USER_AGENT_LENGTH: Final = 512


def _wsgi_text(value: str) -> str:
    """Header text as the client sent it: WSGI hands out latin-1, browsers send UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return value


def _wsgi_bytes(value: str) -> bytes:
    """A WSGI (latin-1) string back to the bytes the client sent."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:  # a server that decoded UTF-8 itself
        return value.encode("utf-8", "surrogateescape")


def _printable(value: str | None, limit: int) -> str | None:
    if not value:
        return None
    if value.isascii() and value.isprintable():
        return value[:limit].strip() or None
    value = _wsgi_text(value)[:limit]
    if not value.isprintable():
        value = "".join(c if c.isprintable() else " " for c in value)
    return value.strip() or None


_HOST: Final = re.compile(
    r"[A-Za-z0-9.\-]{1,253}(?::\d{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](?::\d{1,5})?"
)
_URL_SAFE: Final = "/:@!$&'()*+,;=-._~%?"
#: Bytes that need no quoting in a URL (the common case skips ``quote``).
_URL_PLAIN: Final = re.compile(rb"[A-Za-z0-9/:@!$&'()*+,;=\-._~%?]*")


_URL_PLAIN_TEXT: Final = re.compile(r"[A-Za-z0-9/:@!$&'()*+,;=\-._~%?]*")


def _url_part(raw: bytes) -> str:
    if _URL_PLAIN.fullmatch(raw):
        return raw.decode("ascii")
    return quote(raw, safe=_URL_SAFE)
