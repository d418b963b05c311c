"""The visitor rules: the affiliate reference in the query, bots, prefetches and navigations.

:func:`referral_from_query` finds ``(param, affiliate_reference, source)`` in the raw query
bytes (the first plausible value of the highest-priority ref parameter wins), and
:func:`is_navigation` says whether a request is a person's top-level page load, not a
declared crawler, a link preview, a prefetch or a ``fetch()``: only those land a click or
re-issue a cookie. Headers are read through a :data:`HeaderLookup`. Pure functions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Final
from urllib.parse import unquote_to_bytes

__all__ = [
    "MAX_REF_LENGTH",
    "SOURCE_PARAMS",
    "BOT_MARKERS",
    "HeaderLookup",
    "plausible_value",
    "referral_from_query",
    "is_bot",
    "is_navigation",
]

#: Longest affiliate reference (and ``source``) we accept; longer ones are ignored.
MAX_REF_LENGTH: Final = 128
#: Query parameters that carry the click's ``source``.
SOURCE_PARAMS: Final = ("utm_source", "source")

#: Declared crawlers, link unfurlers and preview fetchers (searched in the lower-cased UA).
#: Plain substrings: a regex alternation this long is many times slower.
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

#: Headers that mark a prefetch, a prerender or a link preview.
_PURPOSE_HEADERS: Final = ("sec-purpose", "purpose", "x-purpose", "x-moz")

HeaderLookup = Callable[[str], "str | None"]
"""``lookup("user-agent") -> value or None``; names are lower-case."""


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
    # The common case: nothing percent-encoded. When the whole query is UTF-8, each part
    # is too (splitting at "&" and "=" never cuts a character), so the text can be scanned
    # directly instead of decoding part by part. "%" and "+" are looked for in the text:
    # `bytes in bytes` first tries the needle as an int (docs/benchmarks/reshape.md).
    try:
        text = query.decode("utf-8")
    except UnicodeDecodeError:
        return _referral_bytes(query, table)
    if "%" in text or "+" in text:
        return _referral_bytes(query, table)
    return _referral_text(text, text_table or _text_table(table))


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


@functools.lru_cache(maxsize=4096)
def is_bot(user_agent: str | None) -> bool:
    """No user agent, or a declared crawler / link preview (cached: user agents repeat)."""
    if not user_agent:
        return True
    ua = user_agent.lower()
    if "cubot" in ua:  # CUBOT phones: a browser, whatever "bot" says
        ua = ua.replace("cubot", "")
    return ua.endswith("bot") or any(marker in ua for marker in BOT_MARKERS)


def is_navigation(header: HeaderLookup) -> bool:
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
