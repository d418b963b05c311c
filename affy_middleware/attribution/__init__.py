"""The attribution decision, framework-neutral: who is this visitor, and did they just land?

:meth:`Attribution.decide` takes a read-only view of one request (:class:`WSGIRequest` or
:class:`ASGIRequest`, see ``request``) and returns a :class:`Decision`: the visit, the
``Set-Cookie`` values to append and the click event of a landing. ``middleware`` applies it.

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

Where it lives: ``decide`` (:class:`Attribution`, :class:`Decision`), ``returning`` (what
the cookie header alone decides: the returning visitor, asked first by the middlewares),
``request`` (the request views), ``visit`` (:class:`Visit`), ``context``
(``current_visit()``), ``cookies`` (the cookie header, tokens, ids, the companion format
and the ``Set-Cookie`` values), ``referral`` (the query and visitor rules: bots,
prefetches, navigations) and ``click`` (the click event: reported URL and headers).
"""

from .context import current_visit, reset_current_visit, set_current_visit
from .decide import Attribution, ConsentHook, Decision
from .request import ASGIRequest, RequestView, WSGIRequest
from .visit import Visit

__all__ = [
    "Attribution",
    "Decision",
    "ConsentHook",
    "RequestView",
    "WSGIRequest",
    "ASGIRequest",
    "Visit",
    "current_visit",
    "set_current_visit",
    "reset_current_visit",
]
