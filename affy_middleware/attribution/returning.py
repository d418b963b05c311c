"""The returning visitor: what a request's ``Cookie`` header alone decides.

:class:`CookieRules` holds the cookie names of one ``Settings`` and
:meth:`CookieRules.returning`, the end of every :meth:`~.decide.Attribution.decide` that
is no affiliate landing: the visit the valid cookies carry (read lazily, a
:class:`~.visit.LazyVisit`), nothing, or :data:`REISSUE` when a click cookie AFFY's snippet
may have written needs the full decision (headers, scheme, consent). Every page view of a
visit comes here, so the middlewares ask it directly, without a request view
(docs/benchmarks/reshape.md).
"""

from __future__ import annotations

import enum
from typing import Any, Final

from .._settings import Settings
from .._wire import Event
from .cookies import _COMPANION_HEAD, TOKEN, _cookie_value, companion_cookie_name, crc_part
from .visit import LazyVisit, Visit

__all__ = ["CookieRules", "Decision", "REISSUE", "Reissue"]

# Bound methods made once, not per call (docs/benchmarks/wsgi.md, "Why the request path
# reads as it does").
_is_token: Final = TOKEN.fullmatch
_companion_head: Final = _COMPANION_HEAD.match
_new_visit: Final = object.__new__

Decision = tuple[Visit, tuple[str, ...], Event | None]
"""What the middleware does for one request: ``(visit, cookies, event)``, the visit, the
``Set-Cookie`` values to append to the response and the click to submit on a landing.
A plain tuple: a returning visitor's decision is made on every page view, and a named
tuple would add ~7 % to it (docs/benchmarks/wsgi.md)."""


class Reissue(enum.Enum):
    """The type of :data:`REISSUE` (an enum of one, so that ``is REISSUE`` narrows)."""

    REISSUE = "reissue"


#: :meth:`CookieRules.returning`'s "ask ``decide``": a click cookie that AFFY's snippet
#: may have written, re-issued or not depending on headers the cookie header lacks.
REISSUE: Final = Reissue.REISSUE


class CookieRules:
    """The cookie names of one ``Settings`` and what a ``Cookie`` header alone decides."""

    __slots__ = (
        "settings",
        "click_cookie",
        "session_cookie",
        "companion_cookie",
        "writes",
        "_click_key",
        "_session_key",
        "_companion_key",
    )

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.click_cookie = settings.click_cookie
        self.session_cookie = settings.session_cookie
        self.companion_cookie = companion_cookie_name(settings.click_cookie)
        #: Inactive settings (no client id, delivery off): visits are read, never written.
        self.writes = settings.active
        self._click_key = self.click_cookie + "="
        self._session_key = self.session_cookie + "="
        self._companion_key = self.companion_cookie + "="

    def returning(self, method: str, cookie: str | None, native: Any) -> Visit | Reissue | None:
        """The visit of a request that cannot land (not a GET, tracking off, or a query
        ``might_land`` rules out), from its ``Cookie`` header alone: ``decide`` returns
        ``(visit, (), None)`` for it, or None when there is none; or :data:`REISSUE` when
        only ``decide`` can tell (a click cookie without our companion). ``decide`` itself
        ends here.
        """
        if not cookie:
            return None
        # _cookie_value(cookie, self._click_key), spelled out here and for the companion:
        # 0.16 µs of a 3.3 µs returning visitor (bench_wsgi.py, docs/benchmarks.md).
        key = self._click_key
        i = cookie.find(key)
        while i > 0 and cookie[i - 1] not in " ;\t":
            i = cookie.find(key, i + 1)
        click_id = None
        if i >= 0:
            end = cookie.find(";", i)
            click_id = cookie[i + len(key) : end if end >= 0 else None].strip()
            if _is_token(click_id) is None:
                click_id = None  # forged or malformed: ignored, never sent on
        if click_id is not None and method == "GET" and self.writes:
            # Is this our click cookie, or one AFFY's snippet wrote? (read_companion(...) is
            # not None, without parsing the rest.)
            key = self._companion_key
            i = cookie.find(key)
            while i > 0 and cookie[i - 1] not in " ;\t":
                i = cookie.find(key, i + 1)
            if i < 0:
                return REISSUE
            end = cookie.find(";", i)
            head = _companion_head(cookie[i + len(key) : end if end >= 0 else None].strip())
            if head is None or head[1] != crc_part(click_id):
                return REISSUE
        visit = _new_visit(LazyVisit)
        if click_id is None or method != "GET":
            # Without a click id the session id decides whether there is a visit at all;
            # on a POST (a signup, a checkout) it is about to be used.
            session_id = _cookie_value(cookie, self._session_key)
            if session_id is not None and _is_token(session_id) is None:
                session_id = None
            if session_id is None and click_id is None:
                return None
            visit.session_id = session_id
            if method != "GET":  # the decorators read these: set now, not on first read
                visit.email = visit.customer_id = visit.customer_name = None
                visit.lead_value = None
        # else the session id is read when asked for (a page view rarely needs it)
        visit.click_id = click_id
        visit.method = method
        visit.settings = self.settings
        visit.native = native
        visit._cookie = cookie
        return visit
