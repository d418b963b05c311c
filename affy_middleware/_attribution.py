"""The attribution decision: :class:`Attribution` turns one request into a :class:`Decision`.

Framework-neutral: the WSGI and the ASGI middleware call :meth:`Attribution.decide` (or its
``decide_query``/``decide_cookies``/``returning`` parts) with the request's method, scheme,
host, path, raw query bytes and a header lookup, and get back the visit, the ``Set-Cookie``
values to append (built from templates precomputed per ``Settings``) and the click event of
a landing. The rules it applies live in ``_referral`` (query, visitor), ``_cookies``
(tokens, ids, the companion) and ``_click`` (the reported URL and headers).
"""

from __future__ import annotations

import functools
import time
import zlib
from collections.abc import Callable
from typing import Any, Final, NamedTuple

from . import _click, _cookies
from ._click import (
    MAX_URL_LENGTH,
    MAX_USER_AGENT_LENGTH,
    _printable,
    _url_part,
    _wsgi_bytes,
)
from ._cookies import (
    CONSENT_YES,
    _b64_ref,
    _cookie_value,
    companion_cookie_name,
    companion_value,
    new_id,
    read_companion,
)
from ._referral import (
    HeaderLookup,
    _landing_needles,
    _param_table,
    _referral,
    _text_table,
    is_navigation,
)
from ._settings import Settings
from ._visitor import Visit, _LazyVisit
from ._wire import Event

__all__ = ["Attribution", "Decision", "ConsentHook", "REISSUE", "decide"]

# The regexes are bound by assignment, not by ``from ... import``: CPython 3.11 compiles a
# method call on an imported name as an attribute load (it expects a module there), which
# makes a bound method on every call; on a plain global it is the cheaper method call.
TOKEN: Final = _cookies.TOKEN
_RAW_REF: Final = _cookies._RAW_REF
_COMPANION_HEAD: Final = _cookies._COMPANION_HEAD
_HOST: Final = _click._HOST
_URL_PLAIN_TEXT: Final = _click._URL_PLAIN_TEXT

ConsentHook = Callable[[Any], bool]
"""``hook(native_request) -> bool``: the WSGI environ or the ASGI scope; True = may set cookies."""


class Decision(NamedTuple):
    """What the middleware does for one request."""

    visit: Visit | None
    #: ``Set-Cookie`` header values to append to the app's response headers.
    cookies: tuple[str, ...]
    #: The click to enqueue, on a landing.
    event: Event | None


class Attribution:
    """The request-time rules for one ``Settings``, with everything precomputed.

    ``decide(...)`` never raises on visitor input; it returns ``None`` when the request
    carries nothing of ours (no visit), else a :class:`Decision`.
    """

    __slots__ = (
        "settings",
        "consent",
        "click_cookie",
        "session_cookie",
        "companion_cookie",
        "consent_cookie",
        "cookie_names",
        "_params",
        "writes",
        "_suffix",
        "_suffix_secure",
        "_http_only",
        "_click_key",
        "_session_key",
        "_companion_key",
        "_land_needles",
        "_templates",
        "_consent_key",
        "_text_params",
    )

    def __init__(self, settings: Settings, consent: ConsentHook | None = None) -> None:
        if consent is not None and not callable(consent):
            raise TypeError(f"consent must be a callable(request) -> bool, got {consent!r}")
        self.settings = settings
        self.consent = consent
        self.click_cookie = settings.click_cookie
        self.session_cookie = settings.session_cookie
        self.companion_cookie = companion_cookie_name(settings.click_cookie)
        self.consent_cookie = settings.consent_cookie
        names = {self.click_cookie, self.session_cookie, self.companion_cookie}
        if self.consent_cookie:
            names.add(self.consent_cookie)
        self.cookie_names = frozenset(names)
        self._params = _param_table(settings.ref_params)
        self._text_params = _text_table(self._params)
        #: Inactive settings (no client id, delivery off): visits are read, never written.
        self.writes = settings.active
        suffix = f"; Path=/; Max-Age={settings.max_age}; SameSite=Lax"
        if settings.cookie_domain:
            suffix += f"; Domain={settings.cookie_domain}"
        secure = suffix + "; Secure"
        self._suffix = secure if settings.cookie_secure else suffix
        self._suffix_secure = suffix if settings.cookie_secure is False else secure
        self._http_only = "; HttpOnly"
        self._click_key = self.click_cookie + "="
        self._session_key = self.session_cookie + "="
        self._companion_key = self.companion_cookie + "="
        self._consent_key = f"{self.consent_cookie}="
        self._land_needles = _landing_needles(settings.ref_params)
        # Set-Cookie templates (prefix, suffix) of the three cookies, for http and https.
        self._templates = {
            https: (
                (self._click_key, self._suffix_secure if https else self._suffix),
                (self._session_key, self._suffix_secure if https else self._suffix),
                (
                    self._companion_key,
                    (self._suffix_secure if https else self._suffix) + self._http_only,
                ),
            )
            for https in (False, True)
        }

    # -- cookies ------------------------------------------------------------------------

    def set_cookie(self, name: str, value: str, *, https: bool, http_only: bool = False) -> str:
        """A ``Set-Cookie`` header value; ``value`` must already be a token."""
        suffix = self._suffix_secure if https else self._suffix
        return f"{name}={value}{suffix}{self._http_only if http_only else ''}"

    # -- the decision -------------------------------------------------------------------

    def decide(
        self,
        method: str,
        scheme: str,
        host: str,
        path: bytes | str,
        query: bytes,
        header: HeaderLookup,
        native: Any = None,
        now: float | None = None,
    ) -> Decision | None:
        if query and self.writes and method == "GET" and self.might_land(query):
            return self.decide_query(method, scheme, host, path, query, header, native, now)
        return self.decide_cookies(method, scheme, header, native, now)

    def decide_query(
        self,
        method: str,
        scheme: str,
        host: str,
        path: bytes | str,
        query: bytes,
        header: HeaderLookup,
        native: Any = None,
        now: float | None = None,
    ) -> Decision | None:
        """``decide`` for a GET whose query may carry an affiliate reference (``writes``
        and ``might_land(query)`` already checked by the caller)."""
        cookie_header = header("cookie")
        if self._is_navigation(header):
            _, ref, source = _referral(query, self._params, self._text_params)
            if ref is not None:
                # An affiliate landing: last click wins.
                if not self._consents_to(cookie_header, native):
                    return self._withheld(method, cookie_header, native, ref)
                return self._landing(
                    method,
                    scheme,
                    host,
                    path,
                    query,
                    header,
                    native,
                    now,
                    ref,
                    source,
                    cookie_header,
                )
        return self._decide_cookies(method, scheme, header, native, now, cookie_header)

    def decide_cookies(
        self,
        method: str,
        scheme: str,
        header: HeaderLookup,
        native: Any = None,
        now: float | None = None,
    ) -> Decision | None:
        """``decide`` for a request that is no affiliate landing."""
        return self._decide_cookies(method, scheme, header, native, now, header("cookie"))

    def _decide_cookies(
        self,
        method: str,
        scheme: str,
        header: HeaderLookup,
        native: Any,
        now: float | None,
        cookie_header: str | None,
    ) -> Decision | None:
        # No landing: a returning visitor (or nobody), unless a click cookie AFFY's snippet
        # wrote may have to be re-issued.
        visit = self.returning(method, cookie_header, native)
        if visit is REISSUE:
            return self._reissue(method, scheme, cookie_header, header, native, now)
        return None if visit is None else Decision(visit, (), None)

    def _token_cookie(self, cookie_header: str | None, key: str) -> str | None:
        value = _cookie_value(cookie_header, key) if cookie_header else None
        return value if value is not None and TOKEN.fullmatch(value) is not None else None

    def _consents_to(self, cookie_header: str | None, native: Any) -> bool:
        if self.consent is not None:
            return bool(self.consent(native))
        if self.consent_cookie:
            value = _cookie_value(cookie_header, self._consent_key) if cookie_header else None
            return (value or "").lower() in CONSENT_YES
        return True

    def _withheld(self, method: str, cookie_header: str | None, native: Any, ref: str) -> Decision:
        """A landing without consent: the reference is known, nothing stored nor reported."""
        click_id = self._token_cookie(cookie_header, self._click_key)
        session_id = self._token_cookie(cookie_header, self._session_key)
        visit = Visit(click_id, session_id, method=method, settings=self.settings, native=native)
        if click_id is not None:
            companion = _cookie_value(cookie_header, self._companion_key) if cookie_header else None
            parsed = read_companion(companion, click_id) if companion else None
            if parsed is not None:
                visit.clicked_at = parsed[0]
        visit.affiliate_reference = ref
        return Decision(visit, (), None)

    def _reissue(
        self,
        method: str,
        scheme: str,
        cookie_header: str | None,
        header: HeaderLookup,
        native: Any,
        now: float | None,
    ) -> Decision:
        """A valid click cookie without our companion: AFFY's snippet wrote it. Re-issue it
        once from the server, value untouched, and mark it with the companion so it is never
        extended again (on a person's page load, with consent)."""
        click_id = self._token_cookie(cookie_header, self._click_key)
        session_id = self._token_cookie(cookie_header, self._session_key)
        assert click_id is not None
        visit = Visit(click_id, session_id, method=method, settings=self.settings, native=native)
        if not self._is_navigation(header) or not self._consents_to(cookie_header, native):
            return Decision(visit, (), None)
        https = scheme == "https"
        clicked_at = int(time.time() if now is None else now)
        visit.reissued = True
        visit.clicked_at = float(clicked_at)
        out = [self.set_cookie(self.click_cookie, click_id, https=https)]
        if session_id is not None:
            out.append(self.set_cookie(self.session_cookie, session_id, https=https))
        out.append(self._companion(click_id, clicked_at, None, https))
        return Decision(visit, tuple(out), None)

    def _landing(
        self,
        method: str,
        scheme: str,
        host: str,
        path: bytes | str,
        query: bytes,
        header: HeaderLookup,
        native: Any,
        now: float | None,
        ref: str,
        source: str | None,
        cookie_header: str | None,
    ) -> Decision:
        session_id = self._token_cookie(cookie_header, self._session_key)
        click_id = new_id()
        if session_id is None:
            session_id = new_id()  # else the visit's session goes on
        clicked_at = int(time.time() if now is None else now)
        visit = Visit(click_id, session_id, ref, True, float(clicked_at), source)
        visit.method = method
        visit.settings = self.settings
        visit.native = native
        (click, click_end), (session, session_end), (companion, companion_end) = self._templates[
            scheme == "https"
        ]
        # companion_value(): our ids are base64url, so ASCII.
        stamp = "%d.%08x" % (clicked_at, zlib.crc32(click_id.encode("ascii")))  # noqa: UP031
        stamp = f"{stamp}.r{ref}" if _RAW_REF.fullmatch(ref) else f"{stamp}.b{_b64_ref(ref)}"
        cookies_out = (
            f"{click}{click_id}{click_end}",
            f"{session}{session_id}{session_end}",
            f"{companion}{stamp}{companion_end}",
        )
        event = self._click_event(
            click_id, session_id, ref, source, scheme, host, path, query, header
        )
        return Decision(visit, cookies_out, event)

    def might_land(self, query: bytes | str) -> bool:
        """False when the query cannot carry an affiliate reference (no ``<ref param>=``,
        no ``%``): the full scan is skipped. A parameter without ``=`` has no value, and an
        empty value is ignored anyway."""
        if isinstance(query, bytes):
            query = query.decode("latin-1")
        if "%" in query:
            return True
        for needle in self._land_needles:  # noqa: SIM110  (a loop is cheaper than any())
            if needle in query:
                return True
        return False

    def returning(self, method: str, cookie_header: str | None, native: Any = None) -> Any:
        """The visit of a request that is no landing: a :class:`Visit` (its
        companion-cookie fields read lazily), None (nothing of ours), or ``REISSUE`` when a
        click cookie without our companion may have to be re-issued (call ``decide``).

        The common case costs a substring search or two and one token check.
        """
        if not cookie_header:
            return None
        # _cookie_value(cookie_header, self._click_key), inlined: this is the hot path.
        key = self._click_key
        i = cookie_header.find(key)
        while i > 0 and cookie_header[i - 1] not in " ;\t":
            i = cookie_header.find(key, i + 1)
        click_id = None
        if i >= 0:
            end = cookie_header.find(";", i)
            click_id = cookie_header[i + len(key) : end if end >= 0 else None].strip()
            if TOKEN.fullmatch(click_id) is None:
                click_id = None  # forged or malformed: ignored, never sent on
        if click_id is not None and method == "GET" and self.writes:
            # Is this our click cookie, or one AFFY's snippet wrote? (read_companion(...) is
            # not None, without parsing the rest; _cookie_value inlined.)
            key = self._companion_key
            i = cookie_header.find(key)
            while i > 0 and cookie_header[i - 1] not in " ;\t":
                i = cookie_header.find(key, i + 1)
            if i < 0:
                return REISSUE
            end = cookie_header.find(";", i)
            head = _COMPANION_HEAD.match(
                cookie_header[i + len(key) : end if end >= 0 else None].strip()
            )
            if head is None or head[1] != "%08x" % zlib.crc32(click_id.encode("ascii")):  # noqa: UP031
                return REISSUE
        visit = object.__new__(_LazyVisit)
        if click_id is None or method != "GET":
            # Without a click id the session id decides whether there is a visit at all;
            # on a POST (a signup, a checkout) it is about to be used.
            session_id = _cookie_value(cookie_header, self._session_key)
            if session_id is not None and TOKEN.fullmatch(session_id) is None:
                session_id = None
            if session_id is None and click_id is None:
                return None
            visit.session_id = session_id
            if method != "GET":  # the decorators read these; a first read costs ~1 µs each
                visit.email = visit.customer_id = visit.customer_name = None
                visit.lead_value = None
        # else the session id is read when asked for (a page view rarely needs it)
        visit.click_id = click_id
        visit.method = method
        visit.settings = self.settings
        visit.native = native
        visit._cookie = cookie_header
        visit._rules = self
        return visit

    def _companion(self, click_id: str, clicked_at: int, ref: str | None, https: bool) -> str:
        value = companion_value(click_id, clicked_at, ref)
        return self.set_cookie(self.companion_cookie, value, https=https, http_only=True)

    #: A person's top-level page load (the rule is ``_referral.is_navigation``).
    _is_navigation = staticmethod(is_navigation)

    def _click_event(
        self,
        click_id: str,
        session_id: str,
        ref: str,
        source: str | None,
        scheme: str,
        host: str,
        path: bytes | str,
        query: bytes,
        header: HeaderLookup,
    ) -> Event:
        if not _HOST.fullmatch(host):
            host = "invalid-host"
        if isinstance(path, str):
            # A WSGI (latin-1) path of URL-safe ASCII is its own URL form: no re-encoding.
            raw = path if _URL_PLAIN_TEXT.fullmatch(path) else _url_part(_wsgi_bytes(path))
        else:
            raw = _url_part(path)
        url = f"{scheme}://{host}{raw or '/'}"
        if query:
            url = f"{url}?{_url_part(query)}"
        # click_body(...), built directly (same keys, same order, None left out): the ids
        # and the reference are non-empty strings already.
        body: dict[str, Any] = {
            "clientId": self.settings.client_id,
            "affiliateReference": ref,
            "clickId": click_id,
            "sessionId": session_id,
            "clickedUrl": url[:MAX_URL_LENGTH],
        }
        # _printable(...), with its common case (printable ASCII) inlined.
        referrer = header("referer")
        if referrer and referrer.isascii() and referrer.isprintable():
            referrer = referrer[:MAX_URL_LENGTH].strip()
        else:
            referrer = _printable(referrer, MAX_URL_LENGTH)
        if referrer and " " not in referrer:
            body["referrerUrl"] = referrer
        user_agent = header("user-agent")
        if user_agent and user_agent.isascii() and user_agent.isprintable():
            user_agent = user_agent[:MAX_USER_AGENT_LENGTH].strip()
        else:
            user_agent = _printable(user_agent, MAX_USER_AGENT_LENGTH)
        if user_agent:
            body["userAgent"] = user_agent
        if source is not None:
            body["source"] = source
        return Event("click", body, session_id)


#: ``Attribution.returning`` says: the full ``decide`` must look at this request.
REISSUE: Final[Any] = object()


@functools.lru_cache(maxsize=64)
def _attribution(settings: Settings, consent: ConsentHook | None) -> Attribution:
    return Attribution(settings, consent)


def decide(
    method: str,
    scheme: str,
    host: str,
    path: bytes | str,
    query: bytes,
    header: HeaderLookup,
    settings: Settings,
    consent: ConsentHook | None = None,
    *,
    native: Any = None,
    now: float | None = None,
) -> Decision | None:
    """The pure decision for one request (see :meth:`Attribution.decide`).

    ``path`` is the raw path as bytes, or a WSGI-style (latin-1) string. ``header`` looks
    headers up by lower-case name. Returns None when the request carries
    no attribution; else the visit, the ``Set-Cookie`` values and the click event.
    """
    return _attribution(settings, consent).decide(
        method, scheme, host, path, query, header, native, now
    )
