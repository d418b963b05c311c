"""The landing's shortcuts answer as the general code does (docs/benchmarks/reshape.md,
"the affiliate landing"): each speed-up of the landing path is held to the slower,
general form it stands in for, over generated input.

- the query scan: the text scan of an unencoded UTF-8 query against the general
  byte-by-byte scan, for any bytes;
- the click URL: a raw (ASGI) path and its query quoted in one go against the WSGI form
  of the same bytes, quoted apart;
- ``decide(view, may_land=True)`` (the middlewares have asked ``might_land`` already)
  against ``decide(view)``;
- event ids: 64 random bits per process and a counter, 32 hex characters.
"""

from __future__ import annotations

import itertools
import re
import types
from typing import Any
from unittest import mock

import pytest
from _strategies import EXAMPLES, messy
from hypothesis import example, given
from hypothesis import strategies as st

from affy_middleware import Settings
from affy_middleware._wire import Event, new_event_id
from affy_middleware.attribution import Attribution, WSGIRequest
from affy_middleware.attribution.click import _url_part, click_event
from affy_middleware.attribution.referral import (
    _param_table,
    _referral,
    _referral_bytes,
    _text_table,
)
from affy_middleware.attribution.visit import Visit

SETTINGS = Settings(client_id=3, api_url="http://127.0.0.1:9")
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"

#: ``name=value`` pairs from the characters that decide which scan applies.
_pairs = st.lists(
    st.tuples(
        st.sampled_from(["ref", "aff", "via", "affy_ref", "utm_source", "source", "x", "ré"]),
        st.text(alphabet="ab +%2F=é\x00\x7f", max_size=6),
    ),
    max_size=4,
).map(lambda pairs: "&".join(f"{name}={value}" for name, value in pairs))

#: Raw query bytes: such pairs, messy latin-1 text, UTF-8 text, or any bytes at all.
raw_queries = st.one_of(
    _pairs.map(lambda text: text.encode("utf-8")),
    _pairs.map(lambda text: text.encode("latin-1")),
    messy.map(lambda text: text.encode("latin-1")),
    messy.map(lambda text: text.encode("utf-8")),
    st.binary(max_size=60),
)


@EXAMPLES
@given(query=raw_queries, custom=st.booleans())
@example(query=b"ref=a+b", custom=True)
@example(query=b"r%65f=x&utm_source=caf%C3%A9", custom=True)
@example(query=b"ref=caf\xe9", custom=True)
def test_the_text_scan_finds_what_the_general_scan_finds(query: bytes, custom: bool) -> None:
    table = _param_table(("ref", "aff", "via", "affy_ref") if custom else ("ré", "x y", "ref"))
    assert _referral(query, table) == _referral_bytes(query, table)
    assert _referral(query, table, _text_table(table)) == _referral_bytes(query, table)


class _Path:
    """A request view with only what ``click_event`` reads: host, path (raw bytes or the
    WSGI latin-1 string of the same bytes) and headers."""

    def __init__(self, path: bytes | str) -> None:
        self.host = "shop.test"
        self.path = path

    @staticmethod
    def header(name: str) -> str | None:
        return CHROME if name == "user-agent" else None


#: Raw paths: plain, with bytes to quote, empty; queries likewise (a "?" included).
raw_paths = st.one_of(
    st.sampled_from([b"", b"/", b"/shop/caf\xc3\xa9", b"/a b", b"/%7E?x", b"/\x00\xff"]),
    st.binary(max_size=30),
)
url_queries = st.one_of(
    st.sampled_from([b"", b"ref=aff", b"ref=a b&x=?", b"ref=%FF\xff"]), st.binary(max_size=30)
)


@EXAMPLES
@given(path=raw_paths, query=url_queries)
def test_a_raw_path_and_its_query_quoted_in_one_go_make_the_same_url(
    path: bytes, query: bytes
) -> None:
    if query:
        assert _url_part(path + b"?" + query) == f"{_url_part(path)}?{_url_part(query)}"
    visit = Visit("c" * 24, "s" * 24, "aff", True, 1.0, None)
    raw = click_event(3, visit, _Path(path), "https", _Path.header, query)  # type: ignore[arg-type]
    wsgi = _Path(path.decode("latin-1"))
    text = click_event(3, visit, wsgi, "https", _Path.header, query)  # type: ignore[arg-type]
    assert raw.body == text.body
    expected = f"https://shop.test{_url_part(path) or '/'}"
    if query:
        expected += f"?{_url_part(query)}"
    assert raw.body["clickedUrl"] == expected[:2048]


def _fixed() -> Any:
    ids = (f"id{n:022d}" for n in itertools.count())
    clock = types.SimpleNamespace(time=lambda: 1_800_000_000.0)
    return (
        mock.patch(
            "affy_middleware.attribution.decide.new_id_pair", lambda: (next(ids), next(ids))
        ),
        mock.patch("affy_middleware.attribution.decide.time", clock),
    )


def _decision(attribution: Attribution, environ: dict[str, Any], **kwargs: Any) -> Any:
    patch_ids, patch_clock = _fixed()
    with patch_ids, patch_clock:
        decision = attribution.decide(WSGIRequest(dict(environ)), **kwargs)
    if decision is None:
        return None
    visit, cookies, event = decision
    return visit, cookies, None if event is None else (event.kind, event.body, event.order_key)


@EXAMPLES
@given(
    query=st.one_of(messy, st.sampled_from(["ref=aff", "ref=a%20b&utm_source=x", "q=1"])),
    method=st.sampled_from(["GET", "GET", "POST"]),
    cookie=st.sampled_from([None, "a=1", "affy_session_id=ctIUs8hi5BgP1lIQOwj8P1sf"]),
    ua=st.sampled_from([CHROME, "Slackbot 1.0", None]),
    consent=st.sampled_from([None, "ok"]),
)
def test_skipping_the_might_land_pre_check_changes_no_decision(
    query: str, method: str, cookie: str | None, ua: str | None, consent: str | None
) -> None:
    attribution = Attribution(SETTINGS.replace(consent_cookie=consent))
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "QUERY_STRING": query}
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    if ua is not None:
        environ["HTTP_USER_AGENT"] = ua
    # may_land=True only skips the pre-check: a query without a reference lands nowhere.
    assert _decision(attribution, environ, may_land=True) == _decision(attribution, environ)


def test_event_ids_are_a_process_prefix_and_a_counter() -> None:
    first, second = new_event_id(), Event(kind="click", body={}).event_id
    for event_id in (first, second):
        assert re.fullmatch(r"[0-9a-f]{32}", event_id)
    assert first[:16] == second[:16]
    assert int(second[16:], 16) == int(first[16:], 16) + 1


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_landing_over_a_wsgi_view_reports_its_url(scheme: str) -> None:
    environ = {
        "REQUEST_METHOD": "GET",
        "QUERY_STRING": "ref=aff&utm_source=blog",
        "PATH_INFO": "/shop/caf\xc3\xa9",
        "HTTP_HOST": "shop.test",
        "HTTP_USER_AGENT": CHROME,
        "wsgi.url_scheme": scheme,
    }
    decision = Attribution(SETTINGS).decide(WSGIRequest(environ), may_land=True)
    assert decision is not None and decision[2] is not None
    url = decision[2].body["clickedUrl"]
    assert url == f"{scheme}://shop.test/shop/caf%C3%A9?ref=aff&utm_source=blog"
