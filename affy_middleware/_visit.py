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
"""

from __future__ import annotations

import base64
import contextvars
import functools
import re
import secrets
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, NamedTuple
from urllib.parse import quote, unquote_to_bytes

from ._settings import Settings
from ._wire import Event, click_body

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
    "new_id",
]

#: Longest affiliate reference (and ``source``) we accept; longer ones are ignored.
MAX_REF_LENGTH: Final = 128
#: Cookie ids: URL-safe token characters only, 8 to 128 of them (UUIDs, base64url, hex).
TOKEN: Final = re.compile(r"[A-Za-z0-9._\-]{8,128}")
#: The server-only companion cookie's value.
_COMPANION: Final = re.compile(r"(\d{1,12})\.([0-9a-f]{8})(?:\.([A-Za-z0-9_\-]{1,700}))?")
#: Longest URL / user agent we forward to AFFY (the rest is cut).
MAX_URL_LENGTH: Final = 2048
MAX_USER_AGENT_LENGTH: Final = 512
#: Query parameters that carry the click's ``source``.
SOURCE_PARAMS: Final = ("utm_source", "source")
#: Values of the consent cookie that mean "yes".
CONSENT_YES: Final = frozenset({"1", "true", "yes", "y", "granted", "accepted", "allow", "all"})

#: Declared crawlers, link unfurlers and preview fetchers (case-insensitive search in the UA).
_BOTS: Final = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|facebookexternalhit|facebookcatalog|twitterbot|slackbot"
    r"|slack-imgproxy|discordbot|telegrambot|whatsapp|linkedinbot|embedly|quora link preview"
    r"|pinterest|redditbot|skypeuripreview|vkshare|applebot|bingpreview|googleother"
    r"|google-inspectiontool|mediapartners|adsbot|preview|lighthouse|pingdom|uptime",
    re.IGNORECASE,
)

HeaderLookup = Callable[[str], "str | None"]
"""``lookup("user-agent") -> value or None``; names are lower-case."""
ConsentHook = Callable[[Any], bool]
"""``hook(native_request) -> bool``: the WSGI environ or the ASGI scope; True = may set cookies."""


@dataclass(slots=True)
class Visit:
    """What the middleware knows about this request's visitor.

    ``click_id`` and ``session_id`` come from valid cookies or from this request's affiliate
    landing (``landed``). ``affiliate_reference`` is known on the landing and on later
    requests of a visit whose cookies this server set. ``identify()`` and
    ``set_lead_value()`` fill the customer fields during the request::

        visit = current_visit()
        if visit is not None and visit.referred:
            print(visit.affiliate_reference, visit.click_id)
    """

    click_id: str | None = None
    session_id: str | None = None
    affiliate_reference: str | None = None
    #: This request is an affiliate landing: new click id, cookies set, click reported.
    landed: bool = False
    #: Unix time of the click, when this server set (or re-issued) the click cookie.
    clicked_at: float | None = None
    #: The click's ``utm_source``/``source`` (on the landing only).
    source: str | None = None
    #: The server re-issued a click cookie written by AFFY's snippet on this request.
    reissued: bool = False
    #: Filled by ``identify()`` / ``set_lead_value()`` during the request.
    email: str | None = None
    customer_id: str | None = None
    customer_name: str | None = None
    lead_value: Decimal | None = None
    #: The request method (the decorators report on POST/PUT/PATCH by default).
    method: str = "GET"
    #: The middleware's settings (events of this visit go to their dispatcher).
    settings: Settings | None = field(default=None, repr=False, compare=False)
    #: The server-level request: the WSGI environ or the ASGI scope.
    native: Any = field(default=None, repr=False, compare=False)

    @property
    def referred(self) -> bool:
        """Whether the visitor came through an affiliate link (a click or session id)."""
        return self.click_id is not None or self.session_id is not None


class Decision(NamedTuple):
    """What the middleware does for one request."""

    visit: Visit | None
    #: ``Set-Cookie`` header values to append to the app's response headers.
    cookies: tuple[str, ...]
    #: The click to enqueue, on a landing.
    event: Event | None


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


# -- small pure rules --------------------------------------------------------------------


def is_token(value: str | None) -> bool:
    """A cookie id we accept: 8-128 characters of ``A-Z a-z 0-9 . _ -``."""
    return value is not None and TOKEN.fullmatch(value) is not None


def new_id() -> str:
    """An unguessable id (144 random bits, 24 base64url characters)."""
    return secrets.token_urlsafe(18)


def companion_cookie_name(click_cookie: str) -> str:
    return click_cookie + "_at"


def plausible_value(raw: str | None) -> str | None:
    """The value stripped, when printable, non-empty and at most 128 characters; else None."""
    if raw is None:
        return None
    value = raw.strip(" ")
    if not value or len(value) > MAX_REF_LENGTH or not value.isprintable():
        return None
    return value


def _decode_component(raw: bytes) -> str | None:
    if b"%" in raw or b"+" in raw:
        raw = unquote_to_bytes(raw.replace(b"+", b" "))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # not text: ignored, like a missing parameter
        return None


def referral_from_query(
    query: bytes, ref_params: tuple[str, ...]
) -> tuple[str | None, str | None, str | None]:
    """``(param, affiliate_reference, source)`` found in raw query bytes.

    Several affiliate parameters in one URL: the first name in ``ref_params`` that carries a
    plausible value wins, whatever their order in the URL. An implausible value counts as
    absent. A repeated parameter: its first plausible value.
    """
    wanted = set(ref_params)
    found: dict[str, str] = {}
    source: str | None = None
    for part in query.split(b"&"):
        if not part:
            continue
        raw_name, _, raw_value = part.partition(b"=")
        name = _decode_component(raw_name)
        if name is None:
            continue
        if name in wanted:
            if name not in found:
                value = plausible_value(_decode_component(raw_value))
                if value is not None:
                    found[name] = value
        elif name in SOURCE_PARAMS and source is None:
            source = plausible_value(_decode_component(raw_value))
    for name in ref_params:
        if name in found:
            return name, found[name], source
    return None, None, source


def parse_cookies(header: str, names: frozenset[str]) -> dict[str, str]:
    """The first value of each cookie in ``names`` from a ``Cookie`` header (unvalidated)."""
    found: dict[str, str] = {}
    for part in header.split(";"):
        name, eq, value = part.partition("=")
        if not eq:
            continue
        name = name.strip()
        if name in names and name not in found:
            found[name] = value.strip()
    return found


def is_bot(user_agent: str | None) -> bool:
    """No user agent, or a declared crawler / link preview."""
    return not user_agent or _BOTS.search(user_agent) is not None


def _wsgi_text(value: str) -> str:
    """Header text as the client sent it: WSGI hands out latin-1, browsers send UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return value


def _printable(value: str | None, limit: int) -> str | None:
    if not value:
        return None
    value = _wsgi_text(value)[:limit]
    if not value.isprintable():
        value = "".join(c if c.isprintable() else " " for c in value)
    return value.strip() or None


_HOST: Final = re.compile(
    r"[A-Za-z0-9.\-]{1,253}(?::\d{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](?::\d{1,5})?"
)
_URL_SAFE: Final = "/:@!$&'()*+,;=-._~%?"


def _crc(click_id: str) -> str:
    return f"{zlib.crc32(click_id.encode('ascii')):08x}"


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8")).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> str | None:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return plausible_value(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None


# -- the per-settings rules --------------------------------------------------------------


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
        "writes",
        "_suffix",
        "_suffix_secure",
        "_http_only",
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
        #: Inactive settings (no client id, delivery off): visits are read, never written.
        self.writes = settings.active
        suffix = f"; Path=/; Max-Age={settings.max_age}; SameSite=Lax"
        if settings.cookie_domain:
            suffix += f"; Domain={settings.cookie_domain}"
        secure = suffix + "; Secure"
        self._suffix = secure if settings.cookie_secure else suffix
        self._suffix_secure = suffix if settings.cookie_secure is False else secure
        self._http_only = "; HttpOnly"

    # -- cookies ------------------------------------------------------------------------

    def set_cookie(self, name: str, value: str, *, https: bool, http_only: bool = False) -> str:
        """A ``Set-Cookie`` header value; ``value`` must already be a token."""
        suffix = self._suffix_secure if https else self._suffix
        return f"{name}={value}{suffix}{self._http_only if http_only else ''}"

    def companion_value(self, click_id: str, clicked_at: int, ref: str | None) -> str:
        value = f"{clicked_at}.{_crc(click_id)}"
        return f"{value}.{_b64(ref)}" if ref else value

    def _consents(self, cookies: dict[str, str], native: Any) -> bool:
        if self.consent is not None:
            return bool(self.consent(native))
        if self.consent_cookie:
            return cookies.get(self.consent_cookie, "").strip().lower() in CONSENT_YES
        return True

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
        cookie_header = header("cookie")
        cookies = parse_cookies(cookie_header, self.cookie_names) if cookie_header else {}
        click_id = cookies.get(self.click_cookie)
        if click_id is not None and not is_token(click_id):
            click_id = None  # forged or malformed: ignored, never sent on
        session_id = cookies.get(self.session_cookie)
        if session_id is not None and not is_token(session_id):
            session_id = None
        navigation = self.writes and method == "GET" and self._is_navigation(header)
        ref = source = None
        if navigation and query:
            _, ref, source = referral_from_query(query, self.settings.ref_params)
        if click_id is None and session_id is None and ref is None:
            return None
        visit = Visit(click_id, session_id, method=method, settings=self.settings, native=native)
        companion = cookies.get(self.companion_cookie) if click_id else None
        known = False
        if companion is not None and click_id is not None:
            match = _COMPANION.fullmatch(companion)
            if match is not None and match[2] == _crc(click_id):
                known = True
                visit.clicked_at = float(match[1])
                if match[3]:
                    visit.affiliate_reference = _unb64(match[3])
        if not navigation or not (ref is not None or (click_id is not None and not known)):
            return Decision(visit, (), None)
        if not self._consents(cookies, native):
            if ref is not None:
                visit.affiliate_reference = ref  # known, but nothing stored nor reported
            return Decision(visit, (), None)
        https = scheme == "https"
        clicked_at = int(time.time() if now is None else now)
        if ref is None:
            # A click cookie AFFY's snippet wrote: re-issue it once from the server, value
            # untouched, and mark it with the companion so it is never extended again.
            assert click_id is not None
            visit.reissued = True
            visit.clicked_at = float(clicked_at)
            out = [self.set_cookie(self.click_cookie, click_id, https=https)]
            if session_id is not None:
                out.append(self.set_cookie(self.session_cookie, session_id, https=https))
            out.append(self._companion(click_id, clicked_at, None, https))
            return Decision(visit, tuple(out), None)
        # An affiliate landing: last click wins.
        click_id = visit.click_id = new_id()
        if session_id is None:
            session_id = visit.session_id = new_id()
        visit.affiliate_reference = ref
        visit.source = source
        visit.landed = True
        visit.clicked_at = float(clicked_at)
        cookies_out = (
            self.set_cookie(self.click_cookie, click_id, https=https),
            self.set_cookie(self.session_cookie, session_id, https=https),
            self._companion(click_id, clicked_at, ref, https),
        )
        event = self._click_event(visit, scheme, host, path, query, header)
        return Decision(visit, cookies_out, event)

    def _companion(self, click_id: str, clicked_at: int, ref: str | None, https: bool) -> str:
        value = self.companion_value(click_id, clicked_at, ref)
        return self.set_cookie(self.companion_cookie, value, https=https, http_only=True)

    @staticmethod
    def _is_navigation(header: HeaderLookup) -> bool:
        """A person's top-level page load: not a bot, a preview, a prefetch or a fetch()."""
        if is_bot(header("user-agent")):
            return False
        for name in ("sec-purpose", "purpose", "x-purpose", "x-moz"):
            value = header(name)
            if value and (
                "prefetch" in value.lower()
                or "prerender" in value.lower()
                or "preview" in value.lower()
            ):
                return False
        mode = header("sec-fetch-mode")
        return not mode or mode.strip().lower() == "navigate"

    def _click_event(
        self,
        visit: Visit,
        scheme: str,
        host: str,
        path: bytes | str,
        query: bytes,
        header: HeaderLookup,
    ) -> Event:
        assert visit.click_id and visit.session_id and visit.affiliate_reference
        assert self.settings.client_id is not None
        if not _HOST.fullmatch(host):
            host = "invalid-host"
        raw_path = path.encode("utf-8") if isinstance(path, str) else path
        url = f"{scheme}://{host}{quote(raw_path or b'/', safe=_URL_SAFE)}"
        if query:
            url += "?" + quote(query, safe=_URL_SAFE)
        referrer = _printable(header("referer"), MAX_URL_LENGTH)
        body = click_body(
            self.settings.client_id,
            affiliate_reference=visit.affiliate_reference,
            click_id=visit.click_id,
            session_id=visit.session_id,
            clicked_url=url[:MAX_URL_LENGTH],
            referrer_url=referrer if referrer and " " not in referrer else None,
            user_agent=_printable(header("user-agent"), MAX_USER_AGENT_LENGTH),
            source=visit.source,
        )
        return Event(kind="click", body=body, order_key=visit.session_id)


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

    ``header`` looks headers up by lower-case name. Returns None when the request carries
    no attribution; else the visit, the ``Set-Cookie`` values and the click event.
    """
    return _attribution(settings, consent).decide(
        method, scheme, host, path, query, header, native, now
    )
