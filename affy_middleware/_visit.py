"""The visit: cookies, affiliate landings, bot and consent rules, and ``current_visit()``.

Framework-neutral: the WSGI and the ASGI middleware both call :meth:`Attribution.decide`
with the request's method, scheme, host, path, raw query bytes and a header lookup, and get
back a :class:`Decision` (the visit, the ``Set-Cookie`` values to append, the click event).

Cookies (all ``Path=/``, ``Max-Age`` = the attribution window, ``SameSite=Lax``, ``Secure``
on https or per ``cookie_secure``, ``Domain`` when ``cookie_domain`` is set):

``affy_click_id``
    The click id, exactly the value AFFY's JavaScript snippet reads and writes. Not
    ``HttpOnly``: the snippet must still be able to read it (and overwrite it on a new
    click). The value is an attribution id, not a credential.
``affy_session_id``
    The visit's session id, sent to AFFY with the click and the payment. Not ``HttpOnly``
    for the same reason (it may be configured to the snippet's own session cookie name).
``affy_click_id_at`` (the click cookie's name + ``_at``; ``HttpOnly``)
    Written only by the server, next to the click cookie: ``<click unix time>.<crc32 of the
    click id>[.<base64url affiliate reference>]``. It says "this server set (or re-issued)
    this very click id at that time". A click cookie without a matching companion was
    written by the snippet: it is re-issued once from the server (Safari caps script-written
    cookies at 7 days, server-set ones at their ``Max-Age``) together with a fresh
    companion, so it is never extended again. The click id value is never changed.

Where it lives: :class:`Visit` in ``_visitor``; the decision engine (:class:`Attribution`,
:class:`Decision`, :func:`decide`) in ``_attribution``; the cookie header, tokens, ids and
the companion format in ``_cookies``; the query and visitor rules (bots, prefetches,
navigations) in ``_referral``; the click's reported URL and headers in ``_click``. This
module holds the request's context variable and re-exports the names the middlewares and
the tests import from here.
"""

from __future__ import annotations

import contextvars

from ._attribution import REISSUE as REISSUE
from ._attribution import Attribution, ConsentHook, Decision, decide
from ._click import MAX_URL_LENGTH as MAX_URL_LENGTH
from ._click import MAX_USER_AGENT_LENGTH as MAX_USER_AGENT_LENGTH
from ._cookies import CONSENT_YES as CONSENT_YES
from ._cookies import TOKEN as TOKEN
from ._cookies import _crc as _crc
from ._cookies import (
    companion_cookie_name,
    companion_value,
    is_token,
    new_id,
    parse_cookies,
    read_companion,
)
from ._referral import BOT_MARKERS as BOT_MARKERS
from ._referral import MAX_REF_LENGTH as MAX_REF_LENGTH
from ._referral import SOURCE_PARAMS as SOURCE_PARAMS
from ._referral import HeaderLookup, is_bot, plausible_value, referral_from_query
from ._referral import _param_table as _param_table
from ._referral import _referral as _referral
from ._referral import _referral_bytes as _referral_bytes
from ._visitor import Visit

__all__ = [
    "Visit",
    "Decision",
    "Attribution",
    "ConsentHook",
    "HeaderLookup",
    "current_visit",
    "set_current_visit",
    "reset_current_visit",
    "decide",
    "is_token",
    "parse_cookies",
    "referral_from_query",
    "plausible_value",
    "is_bot",
    "companion_cookie_name",
    "companion_value",
    "read_companion",
    "new_id",
]


_current: contextvars.ContextVar[Visit | None] = contextvars.ContextVar("affy_visit", default=None)


def current_visit() -> Visit | None:
    """The visit of the request being handled, or None (no middleware, no attribution).

    Works in threads and asyncio tasks started within the request (contextvars)::

        from affy_middleware import current_visit
        visit = current_visit()
    """
    return _current.get()


def set_current_visit(visit: Visit | None) -> contextvars.Token[Visit | None]:
    return _current.set(visit)


def reset_current_visit(token: contextvars.Token[Visit | None]) -> None:
    _current.reset(token)
