"""The click event of a landing, and the reported text: clicked URL, referrer, user agent.

What the click event sends to AFFY, made safe: the host checked (else ``invalid-host``), the
path and query percent-encoded where needed (a WSGI latin-1 path back to the client's
bytes first), the referrer and user agent cut to their limits and stripped of what is not
printable. The body itself is built by ``_wire.checked_click_body``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

from .._wire import Event, checked_click_body
from .request import wsgi_bytes

if TYPE_CHECKING:
    from .referral import HeaderLookup
    from .request import RequestView
    from .visit import Visit

__all__ = ["MAX_URL_LENGTH", "MAX_USER_AGENT_LENGTH", "click_event"]

#: Longest URL / user agent we forward to AFFY (the rest is cut).
MAX_URL_LENGTH: Final = 2048
MAX_USER_AGENT_LENGTH: Final = 512


def _wsgi_text(value: str) -> str:
    """Header text as the client sent it: WSGI hands out latin-1, browsers send UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return value


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


def click_event(
    client_id: int | None,
    visit: Visit,
    request: RequestView,
    scheme: str,
    header: HeaderLookup,
    query: bytes,
) -> Event:
    """The click of a landing's ``visit`` (``scheme``, ``header``, ``query``: the request's,
    already read by the caller)."""
    host = request.host
    if not _HOST.fullmatch(host):
        host = "invalid-host"
    path = request.path
    if isinstance(path, str):
        # A WSGI (latin-1) path of URL-safe ASCII is its own URL form: no re-encoding.
        raw = path if _URL_PLAIN_TEXT.fullmatch(path) else _url_part(wsgi_bytes(path))
        url = f"{scheme}://{host}{raw or '/'}"
        if query:
            url = f"{url}?{_url_part(query)}"
    elif query:
        # Quoted byte by byte, and "?" needs no quoting: the path and the query in one go
        # are the two quoted apart, for one scan instead of two.
        url = f"{scheme}://{host}{_url_part((path or b'/') + b'?' + query)}"
    else:
        url = f"{scheme}://{host}{_url_part(path) or '/'}"
    # _printable(...), with its common case (printable ASCII) first.
    referrer = header("referer")
    if referrer and referrer.isascii() and referrer.isprintable():
        referrer = referrer[:MAX_URL_LENGTH].strip()
    else:
        referrer = _printable(referrer, MAX_URL_LENGTH)
    user_agent = header("user-agent")
    if user_agent and user_agent.isascii() and user_agent.isprintable():
        user_agent = user_agent[:MAX_USER_AGENT_LENGTH].strip()
    else:
        user_agent = _printable(user_agent, MAX_USER_AGENT_LENGTH)
    session_id: str = visit.session_id  # type: ignore[assignment]  # a landing's: set
    body = checked_click_body(
        client_id,
        visit.affiliate_reference,  # type: ignore[arg-type]  # the landing's reference
        visit.click_id,  # type: ignore[arg-type]  # a new id
        session_id,
        url[:MAX_URL_LENGTH],
        # A referrer with a space in it is no URL.
        referrer if referrer and " " not in referrer else None,
        user_agent or None,
        visit.source,
    )
    return Event("click", body, session_id)
