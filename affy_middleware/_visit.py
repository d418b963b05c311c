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
import collections
import contextvars
import functools
import os
import re
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any, Final, NamedTuple
from urllib.parse import quote, unquote_to_bytes

from ._settings import Settings
from ._wire import Event

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

#: Longest affiliate reference (and ``source``) we accept; longer ones are ignored.
MAX_REF_LENGTH: Final = 128
#: Cookie ids: URL-safe token characters only, 8 to 128 of them (UUIDs, base64url, hex).
TOKEN: Final = re.compile(r"[A-Za-z0-9._\-]{8,128}")
#: An affiliate reference stored as is in the companion cookie (else base64url).
_RAW_REF: Final = re.compile(r"[A-Za-z0-9._\-]{1,128}")
#: Longest URL / user agent we forward to AFFY (the rest is cut).
MAX_URL_LENGTH: Final = 2048
MAX_USER_AGENT_LENGTH: Final = 512
#: Query parameters that carry the click's ``source``.
SOURCE_PARAMS: Final = ("utm_source", "source")
#: Values of the consent cookie that mean "yes".
CONSENT_YES: Final = frozenset({"1", "true", "yes", "y", "granted", "accepted", "allow", "all"})

#: Declared crawlers, link unfurlers and preview fetchers (searched in the lower-cased UA).
#: Plain substrings: a regex alternation this long costs tens of µs per request.
BOT_MARKERS: Final = (
    "bot/",
    "bot;",
    "bot)",
    "bot ",
    "bot-",
    "bot_",
    "bot.",
    "crawl",
    "spider",
    "slurp",
    "facebookexternalhit",
    "facebookcatalog",
    "whatsapp",
    "embedly",
    "quora link preview",
    "pinterest",
    "skypeuripreview",
    "vkshare",
    "bingpreview",
    "googleother",
    "google-inspectiontool",
    "mediapartners",
    "preview",
    "lighthouse",
    "pingdom",
    "uptime",
    "slack-imgproxy",
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


_COMPARED_FIELDS: Final = tuple(f.name for f in fields(Visit) if f.compare)
#: Fields a returning visitor's visit fills on first access (see ``_LazyVisit``).
_DEFAULTS: Final[dict[str, Any]] = {
    "landed": False,
    "source": None,
    "reissued": False,
    "email": None,
    "customer_id": None,
    "customer_name": None,
    "lead_value": None,
}


class _LazyVisit(Visit):
    """A returning visitor's visit that reads its cookies only when asked.

    Made with the click id (or the session id), the method, the settings and the native
    request; the other slots stay unset, so reading one raises inside its slot descriptor
    and lands in ``__getattr__``, which fills it once: the session id from the cookie, the
    companion's ``clicked_at``/``affiliate_reference``, or the field's default. A field
    code sets first is never overwritten. To every reader it is a plain :class:`Visit`.
    """

    __slots__ = ("_cookie", "_rules")
    _cookie: str
    _rules: Attribution

    def __getattr__(self, name: str) -> Any:
        if name in _DEFAULTS:
            value = _DEFAULTS[name]
        elif name == "session_id":
            value = _cookie_value(self._cookie, self._rules._session_key)
            if value is not None and TOKEN.fullmatch(value) is None:
                value = None
        elif name == "affiliate_reference" or name == "clicked_at":
            self._read_companion()
            return object.__getattribute__(self, name)
        else:
            raise AttributeError(name)
        object.__setattr__(self, name, value)
        return value

    def _read_companion(self) -> None:
        clicked_at = ref = None
        click_id = self.click_id
        if click_id is not None:
            companion = _cookie_value(self._cookie, self._rules._companion_key)
            parsed = read_companion(companion, click_id) if companion else None
            if parsed is not None:
                clicked_at, ref = parsed
        for name, value in (("clicked_at", clicked_at), ("affiliate_reference", ref)):
            try:
                object.__getattribute__(self, name)
            except AttributeError:  # still unset (not written by code meanwhile)
                object.__setattr__(self, name, value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Visit):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in _COMPARED_FIELDS)

    __hash__ = None  # type: ignore[assignment]  # mutable, like Visit

    def __repr__(self) -> str:
        return Visit.__repr__(self).replace("_LazyVisit(", "Visit(", 1)


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


#: Ids drawn from ``os.urandom`` 64 at a time (one system call costs ~0.7 µs here, as
#: much as the rest of the id): each id is 18 random bytes no other id shares. Emptied in
#: a forked child, so parent and child never hand out the same ids.
_ID_BATCH: Final = 64
_id_pool: collections.deque[str] = collections.deque()


def _refill_ids() -> None:
    text = base64.urlsafe_b64encode(os.urandom(18 * _ID_BATCH)).decode("ascii")
    _id_pool.extend([text[i : i + 24] for i in range(0, 24 * _ID_BATCH, 24)])


os.register_at_fork(after_in_child=_id_pool.clear)


def new_id() -> str:
    """An unguessable id (144 random bits, 24 base64url characters)."""
    try:
        return _id_pool.popleft()  # atomic: two threads never get the same id
    except IndexError:
        _refill_ids()
        return new_id()


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
    return _referral(query, _param_table(ref_params))


@functools.lru_cache(maxsize=32)
def _param_table(ref_params: tuple[str, ...]) -> dict[bytes, int]:
    """Raw parameter name -> rank (0.. for ref params by priority, -1 for source params)."""
    table = {name.encode("utf-8"): rank for rank, name in enumerate(ref_params)}
    for name in SOURCE_PARAMS:
        table.setdefault(name.encode("ascii"), -1)
    return table


def _text_table(table: dict[bytes, int]) -> dict[str, int]:
    return {name.decode("utf-8"): rank for name, rank in table.items()}


def _referral(
    query: bytes, table: dict[bytes, int], text_table: dict[str, int] | None = None
) -> tuple[str | None, str | None, str | None]:
    if b"%" not in query and b"+" not in query:
        # The common case: nothing percent-encoded. When the whole query is UTF-8, each
        # part is too (splitting at "&" and "=" never cuts a character), so the text can be
        # scanned directly instead of decoding part by part.
        try:
            text = query.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return _referral_text(text, text_table or _text_table(table))
    return _referral_bytes(query, table)


def _referral_bytes(
    query: bytes, table: dict[bytes, int]
) -> tuple[str | None, str | None, str | None]:
    """The general scan: parameter by parameter, percent-decoding names and values."""
    best_rank = len(table)
    best: str | None = None
    best_name = b""
    source: str | None = None
    for part in query.split(b"&"):
        raw_name, _, raw_value = part.partition(b"=")
        rank = table.get(raw_name)
        if rank is None:
            # Parameter names have no "%" nor "+": only an encoded name can still match.
            if b"%" not in raw_name and b"+" not in raw_name:
                continue
            decoded = _decode_component(raw_name)
            if decoded is None:
                continue
            raw_name = decoded.encode("utf-8")
            rank = table.get(raw_name)
            if rank is None:
                continue
        if rank >= 0:
            if rank < best_rank:
                value = plausible_value(_decode_component(raw_value))
                if value is not None:
                    best_rank, best, best_name = rank, value, raw_name
        elif source is None:
            source = plausible_value(_decode_component(raw_value))
    if best is None:
        return None, None, source
    return best_name.decode("utf-8"), best, source


def _referral_text(query: str, table: dict[str, int]) -> tuple[str | None, str | None, str | None]:
    """``_referral`` for a query without ``%`` or ``+`` (nothing to decode)."""
    best_rank = len(table)
    best: str | None = None
    best_name = ""
    source: str | None = None
    for part in query.split("&"):
        name, _, value = part.partition("=")
        rank = table.get(name)
        if rank is None:
            continue
        if rank >= 0:
            if rank < best_rank:
                plausible = plausible_value(value)
                if plausible is not None:
                    best_rank, best, best_name = rank, plausible, name
        elif source is None:
            source = plausible_value(value)
    if best is None:
        return None, None, source
    return best_name, best, source


def parse_cookies(header: str, names: Iterable[str]) -> dict[str, str]:
    """The first value of each cookie in ``names`` from a ``Cookie`` header (unvalidated)."""
    return _find_cookies(header, tuple((name, name + "=") for name in names))


def _cookie_value(header: str, key: str) -> str | None:
    """The first value of the cookie ``key`` (``"name="``), as ``_find_cookies`` finds it."""
    i = header.find(key)
    while i > 0 and header[i - 1] not in " ;\t":
        i = header.find(key, i + 1)
    if i < 0:
        return None
    end = header.find(";", i)
    return header[i + len(key) : end if end >= 0 else None].strip()


def _find_cookies(header: str, keys: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """Looks for ``name=`` at the start or after ``;``/space instead of splitting the whole
    header: most of a real header belongs to other cookies.
    """
    found: dict[str, str] = {}
    for name, key in keys:
        start = 0
        while True:
            i = header.find(key, start)
            if i < 0:
                break
            if i == 0 or header[i - 1] in " ;\t":
                end = header.find(";", i)
                found[name] = header[i + len(key) : end if end >= 0 else None].strip()
                break
            start = i + 1
    return found


@functools.lru_cache(maxsize=4096)
def is_bot(user_agent: str | None) -> bool:
    """No user agent, or a declared crawler / link preview (cached: user agents repeat)."""
    if not user_agent:
        return True
    ua = user_agent.lower()
    if "cubot" in ua:  # CUBOT phones: a browser, whatever "bot" says
        ua = ua.replace("cubot", "")
    return ua.endswith("bot") or any(marker in ua for marker in BOT_MARKERS)


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


def _crc(click_id: str) -> str:
    return f"{zlib.crc32(click_id.encode('utf-8', 'replace')):08x}"


def _unb64(text: str) -> str | None:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return plausible_value(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None


def companion_value(click_id: str, clicked_at: int, ref: str | None) -> str:
    """``<time>.<crc32 of the click id>[.r<ref> | .b<base64url ref>]``: token characters."""
    if click_id.isascii():  # a token: the cheap form of _crc
        value = "%d.%08x" % (clicked_at, zlib.crc32(click_id.encode("ascii")))  # noqa: UP031
    else:
        value = f"{clicked_at}.{_crc(click_id)}"
    if not ref:
        return value
    if _RAW_REF.fullmatch(ref):
        return f"{value}.r{ref}"
    return f"{value}.b{_b64_ref(ref)}"


def _b64_ref(ref: str) -> str:
    return base64.urlsafe_b64encode(ref.encode("utf-8")).rstrip(b"=").decode("ascii")


#: The head of a companion value, ``<time>.<crc part>`` (then ``.`` or the end): matching
#: it and comparing the crc part is ``read_companion(value, click_id) is not None``.
_COMPANION_HEAD: Final = re.compile(r"[0-9]{1,12}\.([^.]*)")


def read_companion(value: str, click_id: str) -> tuple[float, str | None] | None:
    """``(click time, affiliate reference)`` when ``value`` is our companion of ``click_id``."""
    parts = value.split(".", 2)
    if len(parts) < 2:
        return None
    stamp = parts[0]
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        return None
    if parts[1] != _crc(click_id):
        return None
    ref = None
    if len(parts) == 3:
        rest = parts[2]
        if rest[:1] == "r" and _RAW_REF.fullmatch(rest, 1):
            ref = rest[1:]
        elif rest[:1] == "b" and len(rest) <= 700:
            ref = _unb64(rest[1:])
    return float(stamp), ref


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

    @staticmethod
    def _is_navigation(header: HeaderLookup) -> bool:
        """A person's top-level page load: not a bot, a preview, a prefetch or a fetch()."""
        if is_bot(header("user-agent")):
            return False
        for name in _PURPOSE_HEADERS:
            value = header(name)
            if value:
                value = value.lower()
                if "prefetch" in value or "prerender" in value or "preview" in value:
                    return False
        mode = header("sec-fetch-mode")
        return not mode or mode.strip().lower() == "navigate"

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


def _landing_needles(ref_params: tuple[str, ...]) -> tuple[str, ...]:
    """``name=`` of each ref parameter, minus those containing a shorter one."""
    keys = sorted({name + "=" for name in ref_params}, key=len)
    needles: list[str] = []
    for key in keys:
        if not any(n in key for n in needles):
            needles.append(key)
    # A latin-1 WSGI string carries a UTF-8 name as its bytes; a UTF-8 one as the text.
    extra = [n.encode("utf-8").decode("latin-1") for n in needles if not n.isascii()]
    return tuple(needles + extra)


#: Headers that mark a prefetch, a prerender or a link preview.
_PURPOSE_HEADERS: Final = ("sec-purpose", "purpose", "x-purpose", "x-moz")

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
