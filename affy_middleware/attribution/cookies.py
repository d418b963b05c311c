"""Cookie values: the ``Cookie`` header scan, the token rule, our ids and the companion format.

The click and session cookies hold tokens (8-128 URL-safe characters) that :func:`new_id`
draws from ``os.urandom``; the ``Cookie`` header is searched for ``name=`` rather than split,
since most of a real header belongs to other cookies; and the companion cookie,
``<time>.<crc32 of the click id>[.r<ref> | .b<base64url ref>]``, is written by
:func:`companion_value` and checked by :func:`read_companion`. Pure functions, no state but
the id pool, and :class:`SetCookies`, the ``Set-Cookie`` values of one ``Settings``.
"""

from __future__ import annotations

import base64
import collections
import os
import re
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from .._process import PerProcess
from .referral import plausible_value

if TYPE_CHECKING:
    from .._settings import Settings

__all__ = [
    "TOKEN",
    "CONSENT_YES",
    "is_token",
    "new_id",
    "parse_cookies",
    "companion_cookie_name",
    "companion_value",
    "crc_part",
    "read_companion",
    "SetCookies",
]

#: Cookie ids: URL-safe token characters only, 8 to 128 of them (UUIDs, base64url, hex).
TOKEN: Final = re.compile(r"[A-Za-z0-9._\-]{8,128}")
#: An affiliate reference stored as is in the companion cookie (else base64url).
_RAW_REF: Final = re.compile(r"[A-Za-z0-9._\-]{1,128}")
#: Values of the consent cookie that mean "yes".
CONSENT_YES: Final = frozenset({"1", "true", "yes", "y", "granted", "accepted", "allow", "all"})


def is_token(value: str | None) -> bool:
    """A cookie id we accept: 8-128 characters of ``A-Z a-z 0-9 . _ -``."""
    return value is not None and TOKEN.fullmatch(value) is not None


#: Ids drawn from ``os.urandom`` 64 at a time (one system call per id would cost as much
#: as the rest of the id): each id is 18 random bytes no other id shares. The pool is the
#: process's, found by pid (``_process.PerProcess``): a forked child, even one forked
#: without at-fork hooks (uWSGI), starts with an empty pool, never its parent's ids.
_ID_BATCH: Final = 64
_id_pools: PerProcess[collections.deque[str]] = PerProcess(lambda parent: collections.deque())


def _refill_ids(pool: collections.deque[str]) -> None:
    text = base64.urlsafe_b64encode(os.urandom(18 * _ID_BATCH)).decode("ascii")
    pool.extend([text[i : i + 24] for i in range(0, 24 * _ID_BATCH, 24)])


def new_id() -> str:
    """An unguessable id (144 random bits, 24 base64url characters)."""
    pool = _id_pools.get()
    try:
        return pool.popleft()  # atomic: two threads never get the same id
    except IndexError:
        _refill_ids(pool)
        return new_id()


def new_id_pair() -> tuple[str, str]:
    """Two ids (a landing's click id and, for a new visitor, session id) for one pid
    check: ``os.getpid()`` is a system call."""
    pool = _id_pools.get()
    try:
        return pool.popleft(), pool.popleft()  # each popleft atomic
    except IndexError:
        _refill_ids(pool)
        return new_id_pair()


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


def companion_cookie_name(click_cookie: str) -> str:
    return click_cookie + "_at"


#: Bound once: every page view of a visit checks its companion (docs/benchmarks/reshape.md).
_crc32: Final = zlib.crc32


def crc_part(click_id: str) -> str:
    """The companion's check of a click id: its crc32, 8 hex digits."""
    try:
        data = click_id.encode()  # the strict codec is the fast one
    except UnicodeEncodeError:  # no token, but never raise on visitor input
        data = click_id.encode("utf-8", "replace")
    return "%08x" % _crc32(data)  # noqa: UP031


def _unb64(text: str) -> str | None:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return plausible_value(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None


def companion_value(click_id: str, clicked_at: int, ref: str | None) -> str:
    """``<time>.<crc32 of the click id>[.r<ref> | .b<base64url ref>]``: token characters."""
    crc = crc_part(click_id)
    if not ref:
        return f"{clicked_at}.{crc}"
    if _RAW_REF.fullmatch(ref):  # one f-string each: this runs on every landing
        return f"{clicked_at}.{crc}.r{ref}"
    return f"{clicked_at}.{crc}.b{_b64_ref(ref)}"


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
    if parts[1] != crc_part(click_id):
        return None
    ref = None
    if len(parts) == 3:
        rest = parts[2]
        if rest[:1] == "r" and _RAW_REF.fullmatch(rest, 1):
            ref = rest[1:]
        elif rest[:1] == "b" and len(rest) <= 700:
            ref = _unb64(rest[1:])
    return float(stamp), ref


class SetCookies:
    """The ``Set-Cookie`` values of a visit for one ``Settings``: ``Path=/``, ``Max-Age`` =
    the attribution window, ``SameSite=Lax``, ``Domain`` when set, ``Secure`` on https (or
    per ``cookie_secure``), ``HttpOnly`` on the companion only. Prefixes and suffixes are
    built once, for http and for https.
    """

    __slots__ = ("_templates",)

    def __init__(self, settings: Settings) -> None:
        suffix = f"; Path=/; Max-Age={settings.max_age}; SameSite=Lax"
        if settings.cookie_domain:
            suffix += f"; Domain={settings.cookie_domain}"
        secure = suffix + "; Secure"
        plain_end = secure if settings.cookie_secure else suffix
        https_end = suffix if settings.cookie_secure is False else secure
        names = (
            settings.click_cookie,
            settings.session_cookie,
            companion_cookie_name(settings.click_cookie),
        )
        # The companion (the last) is HttpOnly: only the server reads it.
        self._templates = {
            https: tuple(
                (f"{name}=", end + ("; HttpOnly" if i == 2 else "")) for i, name in enumerate(names)
            )
            for https, end in ((False, plain_end), (True, https_end))
        }

    def values(
        self, https: bool, click_id: str, session_id: str | None, companion: str
    ) -> tuple[str, ...]:
        """The click, session (when there is one) and companion cookies; the values must
        be tokens already."""
        (click, click_end), (session, session_end), (comp, comp_end) = self._templates[https]
        if session_id is None:
            return f"{click}{click_id}{click_end}", f"{comp}{companion}{comp_end}"
        return (
            f"{click}{click_id}{click_end}",
            f"{session}{session_id}{session_end}",
            f"{comp}{companion}{comp_end}",
        )
