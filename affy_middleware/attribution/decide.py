"""The attribution decision: :class:`Attribution` turns one request into a :class:`Decision`.

Framework-neutral: :meth:`Attribution.decide` reads the request through a
:class:`~.request.RequestView` (method, query, cookie header, scheme, header lookup) and
returns the visit, the ``Set-Cookie`` values to append and the click event of a landing.
The rules it applies live in ``referral`` (query, visitor), ``cookies`` (tokens, ids, the
companion, the ``Set-Cookie`` values) and ``click`` (the click event).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .._settings import Settings
from .click import click_event
from .cookies import (
    CONSENT_YES,
    TOKEN,
    SetCookies,
    _cookie_value,
    companion_value,
    new_id_pair,
    read_companion,
)
from .referral import (
    HeaderLookup,
    _landing_needles,
    _param_table,
    _referral,
    _text_table,
    is_navigation,
)
from .request import RequestView
from .returning import REISSUE, CookieRules, Decision, Reissue
from .visit import Visit

__all__ = ["Attribution", "Decision", "ConsentHook", "REISSUE", "Reissue"]

ConsentHook = Callable[[Any], bool]
"""``hook(native_request) -> bool``: the WSGI environ or the ASGI scope; True = may set cookies."""


class Attribution(CookieRules):
    """The request-time rules for one ``Settings``, with everything precomputed.

    ``decide(request)`` never raises on visitor input; it returns ``None`` when the request
    carries nothing of ours (no visit), else a :class:`Decision`.
    """

    __slots__ = (
        "consent",
        "consent_cookie",
        "_params",
        "_text_params",
        "_consent_key",
        "_asks_consent",
        "_land_needles",
        "_set_cookies",
    )

    def __init__(self, settings: Settings, consent: ConsentHook | None = None) -> None:
        if consent is not None and not callable(consent):
            raise TypeError(f"consent must be a callable(request) -> bool, got {consent!r}")
        super().__init__(settings)
        self.consent = consent
        self.consent_cookie = settings.consent_cookie
        self._params = _param_table(settings.ref_params)
        self._text_params = _text_table(self._params)
        self._consent_key = f"{self.consent_cookie}="
        #: A consent hook or cookie to ask (else every landing may set cookies).
        self._asks_consent = consent is not None or bool(self.consent_cookie)
        self._land_needles = _landing_needles(settings.ref_params)
        self._set_cookies = SetCookies(settings)

    def decide(
        self, request: RequestView, now: float | None = None, *, may_land: bool = False
    ) -> Decision | None:
        """The decision for one request (``now``: the click time, default the clock).

        ``may_land=True``: the caller found ``might_land(request.query)`` true already (the
        middlewares ask it before they make a view), so it is not asked again. Only that
        pre-check is skipped: a query without an affiliate reference still does not land.
        """
        query = request.query
        if (
            query
            and self.writes
            and request.method == "GET"
            and (may_land or self.might_land(query))
        ):
            header = request.header
            if is_navigation(header):
                raw = request.query_bytes
                _, ref, source = _referral(raw, self._params, self._text_params)
                if ref is not None:
                    # An affiliate landing: last click wins.
                    if self._asks_consent and not self._consents_to(request):
                        return self._withheld(request, ref)
                    return self._landing(request, header, raw, ref, source, now)
        # No landing: what the cookies alone decide, unless a click cookie AFFY's snippet
        # wrote may have to be re-issued (that needs the headers, the scheme, consent).
        visit = self.returning(request.method, request.cookie, request.native)
        if visit is REISSUE:
            return self._reissue(request, now)
        return None if visit is None else (visit, (), None)

    def might_land(self, query: bytes | str) -> bool:
        """False when the query cannot carry an affiliate reference (no ``<ref param>=``,
        no ``%``): the full scan is skipped. A parameter without ``=`` has no value, and an
        empty value is ignored anyway."""
        if isinstance(query, bytes):
            # Searched as text: `bytes in bytes` first tries the needle as an int.
            query = query.decode("latin-1")
        if "%" in query:
            return True
        for needle in self._land_needles:  # noqa: SIM110  (a loop is cheaper than any())
            if needle in query:
                return True
        return False

    def _token_cookie(self, cookie_header: str | None, key: str) -> str | None:
        value = _cookie_value(cookie_header, key) if cookie_header else None
        return value if value is not None and TOKEN.fullmatch(value) is not None else None

    def _consents_to(self, request: RequestView) -> bool:
        if self.consent is not None:
            return bool(self.consent(request.native))
        if self.consent_cookie:
            cookie = request.cookie
            value = _cookie_value(cookie, self._consent_key) if cookie else None
            return (value or "").lower() in CONSENT_YES
        return True

    def _withheld(self, request: RequestView, ref: str) -> Decision:
        """A landing without consent: the reference is known, nothing stored nor reported."""
        cookie = request.cookie
        click_id = self._token_cookie(cookie, self._click_key)
        session_id = self._token_cookie(cookie, self._session_key)
        visit = Visit(click_id, session_id, method=request.method, settings=self.settings)
        visit.native = request.native
        if click_id is not None and cookie:
            companion = _cookie_value(cookie, self._companion_key)
            parsed = read_companion(companion, click_id) if companion else None
            if parsed is not None:
                visit.clicked_at = parsed[0]
        visit.affiliate_reference = ref
        return visit, (), None

    def _reissue(self, request: RequestView, now: float | None) -> Decision:
        """A valid click cookie without our companion: AFFY's snippet wrote it. Re-issue it
        once from the server, value untouched, and mark it with the companion so it is never
        extended again (on a person's page load, with consent)."""
        cookie = request.cookie
        click_id = self._token_cookie(cookie, self._click_key)
        session_id = self._token_cookie(cookie, self._session_key)
        assert click_id is not None
        visit = Visit(click_id, session_id, method=request.method, settings=self.settings)
        visit.native = request.native
        if not is_navigation(request.header) or not self._consents_to(request):
            return visit, (), None
        clicked_at = int(time.time() if now is None else now)
        visit.reissued = True
        visit.clicked_at = float(clicked_at)
        companion = companion_value(click_id, clicked_at, None)
        out = self._set_cookies.values(request.scheme == "https", click_id, session_id, companion)
        return visit, out, None

    def _landing(
        self,
        request: RequestView,
        header: HeaderLookup,
        query: bytes,
        ref: str,
        source: str | None,
        now: float | None,
    ) -> Decision:
        session_id = self._token_cookie(request.cookie, self._session_key)
        click_id, new_session = new_id_pair()
        if session_id is None:
            session_id = new_session  # else the visit's session goes on (and it is unused)
        clicked_at = int(time.time() if now is None else now)
        visit = Visit(click_id, session_id, ref, True, float(clicked_at), source)
        visit.method = request.method
        visit.settings = self.settings
        visit.native = request.native
        scheme = request.scheme
        companion = companion_value(click_id, clicked_at, ref)
        out = self._set_cookies.values(scheme == "https", click_id, session_id, companion)
        event = click_event(self.settings.client_id, visit, request, scheme, header, query)
        return visit, out, event
