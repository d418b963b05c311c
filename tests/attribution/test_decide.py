"""The framework-neutral visit rules: cookies, landings, bots, consent, re-issue."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest

from affy_middleware import Settings
from affy_middleware._wire import Event
from affy_middleware.attribution import (
    Attribution,
    Visit,
)
from affy_middleware.attribution.cookies import (
    TOKEN,
    is_token,
    parse_cookies,
    read_companion,
)
from affy_middleware.attribution.cookies import crc_part as _crc
from affy_middleware.attribution.referral import is_bot, referral_from_query

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36"
)
SETTINGS = Settings(client_id=7)
NOW = 1_800_000_000.0
COOKIE_VALUE = re.compile(r"^([A-Za-z0-9_.\-]+)=([A-Za-z0-9_.\-]+); ")


class Decision(NamedTuple):
    """``Attribution.decide``'s ``(visit, cookies, event)``, named for the assertions."""

    visit: Visit | None
    cookies: tuple[str, ...]
    event: Event | None


@dataclasses.dataclass
class Request:
    """A ``RequestView`` made of plain values: the rules, apart from any server."""

    method: str
    scheme: str
    host: str
    path: bytes | str
    query: bytes
    header: Callable[[str], str | None]
    native: Any

    @property
    def cookie(self) -> str | None:
        return self.header("cookie")

    @property
    def query_bytes(self) -> bytes:
        return self.query


def decide(
    method: str,
    scheme: str,
    host: str,
    path: bytes | str,
    query: bytes,
    header: Callable[[str], str | None],
    settings: Settings,
    consent: Callable[[object], bool] | None = None,
    *,
    native: Any = None,
    now: float | None = None,
) -> Decision | None:
    request = Request(method, scheme, host, path, query, header, native)
    decision = Attribution(settings, consent).decide(request, now)
    return None if decision is None else Decision(*decision)


def headers(**values: str) -> Callable[[str], str | None]:
    table = {"user-agent": CHROME}
    table.update({k.replace("_", "-"): v for k, v in values.items()})
    return lambda name: table.get(name) or None


def run(
    query: bytes = b"",
    *,
    method: str = "GET",
    scheme: str = "https",
    settings: Settings = SETTINGS,
    consent: Callable[[object], bool] | None = None,
    now: float = NOW,
    **hdrs: str,
) -> Decision | None:
    return decide(
        method, scheme, "shop.test", "/p", query, headers(**hdrs), settings, consent, now=now
    )


def cookie_header(decision: Decision) -> str:
    return "; ".join(c.split(";", 1)[0] for c in decision.cookies)


def set_cookie_map(decision: Decision) -> dict[str, str]:
    return dict(c.split(";", 1)[0].split("=", 1) for c in decision.cookies)


# -- landing ---------------------------------------------------------------------------


def test_landing_sets_cookies_and_reports_click() -> None:
    d = run(b"ref=aff_demo&utm_source=newsletter", referer="https://blog.test/post")
    assert d is not None and d.visit is not None and d.event is not None
    v = d.visit
    assert v.landed and v.affiliate_reference == "aff_demo" and v.source == "newsletter"
    assert is_token(v.click_id) and is_token(v.session_id) and v.clicked_at == int(NOW)
    cookies = set_cookie_map(d)
    assert cookies["affy_click_id"] == v.click_id
    assert cookies["affy_session_id"] == v.session_id
    assert "affy_click_id_at" in cookies
    for header in d.cookies:
        assert "; Path=/; Max-Age=2592000; SameSite=Lax; Secure" in header
        assert COOKIE_VALUE.match(header)
    assert [h.endswith("HttpOnly") for h in d.cookies] == [False, False, True]
    assert d.event.kind == "click" and d.event.order_key == v.session_id
    assert d.event.body == {
        "clientId": 7,
        "affiliateReference": "aff_demo",
        "clickId": v.click_id,
        "sessionId": v.session_id,
        "clickedUrl": "https://shop.test/p?ref=aff_demo&utm_source=newsletter",
        "referrerUrl": "https://blog.test/post",
        "userAgent": CHROME,
        "source": "newsletter",
    }


def test_last_click_wins_and_session_is_kept() -> None:
    first = run(b"ref=one")
    assert first is not None and first.visit is not None
    second = run(b"ref=two", cookie=cookie_header(first))
    assert second is not None and second.visit is not None
    assert second.visit.click_id != first.visit.click_id
    assert second.visit.session_id == first.visit.session_id
    assert second.visit.affiliate_reference == "two"
    assert second.event is not None and second.event.body["affiliateReference"] == "two"


def test_returning_visitor_reads_cookies_without_setting_any() -> None:
    landing = run(b"ref=aff_demo")
    assert landing is not None and landing.visit is not None
    later = run(cookie=cookie_header(landing), now=NOW + 86400)
    assert later is not None and later.visit is not None
    assert later.cookies == () and later.event is None
    v = later.visit
    assert (v.click_id, v.session_id) == (landing.visit.click_id, landing.visit.session_id)
    assert v.affiliate_reference == "aff_demo" and v.clicked_at == int(NOW)
    assert not v.landed and not v.reissued and v.referred


def test_plain_request_has_no_visit() -> None:
    assert run() is None
    assert run(b"q=shoes&page=2", cookie="theme=dark") is None


def test_custom_ref_params_order() -> None:
    settings = Settings(client_id=7, ref_params=("partner", "ref"))
    d = run(b"ref=r&partner=p", settings=settings)
    assert d is not None and d.visit is not None and d.visit.affiliate_reference == "p"


def test_forged_cookie_is_ignored_and_never_forwarded() -> None:
    d = run(b"ref=aff", cookie='affy_click_id="x;y"; affy_session_id=' + "s" * 500)
    assert d is not None and d.visit is not None and d.event is not None
    assert d.event.body["sessionId"] != "s" * 500
    assert all(TOKEN.fullmatch(v) for v in set_cookie_map(d).values())
    assert run(cookie="affy_click_id=%0d%0aX-Evil:1") is None


# -- not a visitor ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "user_agent",
    [
        "",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "facebookexternalhit/1.1",
        "Twitterbot/1.0",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        "WhatsApp/2.23.20.0",
        "LinkedInBot/1.0",
        "Mozilla/5.0 (compatible; bingbot/2.0)",
    ],
)
def test_bots_get_no_cookie_and_no_click(user_agent: str) -> None:
    assert is_bot(user_agent)
    assert run(b"ref=aff", user_agent=user_agent) is None


def test_browsers_are_not_bots() -> None:
    assert not is_bot(CHROME)
    assert not is_bot("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1")
    assert not is_bot(CHROME.replace("Chrome/", "HeadlessChrome/"))
    assert not is_bot("Mozilla/5.0 (Linux; Android 9; CUBOT P30) Chrome/120.0 Mobile Safari/537.36")
    assert not is_bot("Mozilla/5.0 (Linux; Android 10; CUBOT_X30) Chrome/120.0 Mobile")


@pytest.mark.parametrize(
    "extra",
    [
        {"sec_purpose": "prefetch"},
        {"sec_purpose": "prefetch;prerender"},
        {"purpose": "prefetch"},
        {"x_moz": "prefetch"},
        {"x_purpose": "preview"},
        {"sec_fetch_mode": "cors"},
        {"sec_fetch_mode": "no-cors"},
    ],
)
def test_prefetch_and_fetch_get_no_landing(extra: dict[str, str]) -> None:
    assert run(b"ref=aff", **extra) is None


@pytest.mark.parametrize("method", ["HEAD", "POST", "PUT", "OPTIONS"])
def test_non_get_gets_no_landing_but_reads_cookies(method: str) -> None:
    assert run(b"ref=aff", method=method) is None
    landing = run(b"ref=aff")
    assert landing is not None
    d = run(b"ref=other", method=method, cookie=cookie_header(landing))
    assert d is not None and d.visit is not None and d.cookies == () and d.event is None
    assert d.visit.affiliate_reference == "aff"


def test_navigate_mode_is_a_landing() -> None:
    d = run(b"ref=aff", sec_fetch_mode="navigate", sec_fetch_dest="document")
    assert d is not None and d.visit is not None and d.visit.landed


# -- consent -------------------------------------------------------------------------------


def test_consent_hook_holds_cookies_back() -> None:
    seen: list[object] = []

    def no(native: object) -> bool:
        seen.append(native)
        return False

    d = decide("GET", "https", "h", "/", b"ref=aff", headers(), SETTINGS, no, native="REQ")
    assert d is not None and d.visit is not None
    assert d.cookies == () and d.event is None and not d.visit.landed
    assert d.visit.affiliate_reference == "aff" and d.visit.click_id is None
    assert seen == ["REQ"]
    yes = run(b"ref=aff", consent=lambda native: True)
    assert yes is not None and yes.visit is not None and yes.visit.landed


@pytest.mark.parametrize(
    "cookie,landed",
    [
        ("", False),
        ("cc=0", False),
        ("cc=no", False),
        ("cc=1", True),
        ("cc=granted", True),
        ("cc=YES", True),
    ],
)
def test_consent_cookie(cookie: str, landed: bool) -> None:
    settings = Settings(client_id=7, consent_cookie="cc")
    d = run(b"ref=aff", settings=settings, cookie=cookie)
    assert d is not None and d.visit is not None and d.visit.landed is landed
    assert bool(d.cookies) is landed and (d.event is not None) is landed


def test_consent_hook_must_be_callable() -> None:
    with pytest.raises(TypeError, match="consent"):
        Attribution(SETTINGS, "yes")  # type: ignore[arg-type]


# -- cookies attributes ------------------------------------------------------------------


@pytest.mark.parametrize(
    "secure,scheme,expected",
    [(None, "https", True), (None, "http", False), (True, "http", True), (False, "https", False)],
)
def test_secure_attribute(secure: bool | None, scheme: str, expected: bool) -> None:
    settings = Settings(client_id=7, cookie_secure=secure)
    d = run(b"ref=aff", scheme=scheme, settings=settings)
    assert d is not None
    assert all(("; Secure" in c) is expected for c in d.cookies)


def test_domain_and_window() -> None:
    settings = Settings(client_id=7, cookie_domain=".shop.test", attribution_days=7)
    d = run(b"ref=aff", settings=settings)
    assert d is not None
    assert all("; Domain=.shop.test" in c and "; Max-Age=604800;" in c for c in d.cookies)


def test_inactive_settings_read_but_never_write() -> None:
    landing = run(b"ref=aff")
    assert landing is not None
    inactive = Settings()
    assert run(b"ref=aff", settings=inactive) is None
    d = run(b"ref=aff", settings=inactive, cookie=cookie_header(landing))
    assert d is not None and d.visit is not None and d.cookies == () and d.event is None


# -- Safari re-issue --------------------------------------------------------------------------

SNIPPET_ID = "123e4567-e89b-12d3-a456-426614174000"


def test_snippet_cookie_is_reissued_once_with_value_untouched() -> None:
    d = run(cookie=f"affy_click_id={SNIPPET_ID}; affy_session_id=sess-snippet-1")
    assert d is not None and d.visit is not None and d.event is None
    assert d.visit.reissued and d.visit.click_id == SNIPPET_ID
    cookies = set_cookie_map(d)
    assert cookies["affy_click_id"] == SNIPPET_ID
    assert cookies["affy_session_id"] == "sess-snippet-1"
    assert cookies["affy_click_id_at"].startswith(f"{int(NOW)}.")
    # With the companion the browser now sends, it is never extended again.
    again = run(cookie=cookie_header(d) + "; other=1", now=NOW + 20 * 86400)
    assert again is not None and again.visit is not None
    assert again.cookies == () and not again.visit.reissued
    assert again.visit.clicked_at == int(NOW)


def test_new_snippet_click_id_gets_reissued() -> None:
    # The snippet wrote a new click id (a later click): the old companion no longer matches.
    first = run(cookie=f"affy_click_id={SNIPPET_ID}")
    assert first is not None
    companion = set_cookie_map(first)["affy_click_id_at"]
    newer = "223e4567-e89b-12d3-a456-426614174000"
    d = run(cookie=f"affy_click_id={newer}; affy_click_id_at={companion}")
    assert d is not None and d.visit is not None and d.visit.reissued
    assert set_cookie_map(d)["affy_click_id"] == newer


@pytest.mark.parametrize(
    "companion",
    ["garbage", "123.zzzzzzzz", "1800000000.00000000", "1800000000.deadbeef.%%%", ""],
)
def test_forged_companion_means_snippet_cookie(companion: str) -> None:
    d = run(cookie=f"affy_click_id={SNIPPET_ID}; affy_click_id_at={companion}")
    assert d is not None and d.visit is not None and d.visit.reissued


def test_no_reissue_for_bots_posts_or_without_consent() -> None:
    cookie = f"affy_click_id={SNIPPET_ID}"
    for d in (
        run(cookie=cookie, user_agent="Twitterbot/1.0"),
        run(cookie=cookie, method="POST"),
        run(cookie=cookie, consent=lambda native: False),
    ):
        assert d is not None and d.visit is not None
        assert d.cookies == () and not d.visit.reissued and d.visit.click_id == SNIPPET_ID


@pytest.mark.parametrize("ref", ["aff_demo", "café partner", 'a;b"c,d', "x" * 128, "日本"])
def test_reference_survives_in_the_companion(ref: str) -> None:
    from urllib.parse import quote

    landing = run(("ref=" + quote(ref)).encode())
    assert landing is not None
    assert all(COOKIE_VALUE.match(c) for c in landing.cookies)
    later = run(cookie=cookie_header(landing))
    assert later is not None and later.visit is not None
    assert later.visit.affiliate_reference == ref


# -- the request-path shortcuts give the same answers as the full rules ----------------------


def eager_visit(cookie: str, method: str) -> Visit | None:
    """The visit as the rules define it, read eagerly with the public helpers."""
    found = parse_cookies(cookie, ["affy_click_id", "affy_session_id", "affy_click_id_at"])
    click_id = found.get("affy_click_id")
    click_id = click_id if is_token(click_id) else None
    session_id = found.get("affy_session_id")
    session_id = session_id if is_token(session_id) else None
    if click_id is None and session_id is None:
        return None
    visit = Visit(click_id, session_id, method=method, settings=SETTINGS)
    companion = found.get("affy_click_id_at")
    if click_id is not None and companion:
        parsed = read_companion(companion, click_id)
        if parsed is not None:
            visit.clicked_at, visit.affiliate_reference = parsed
    return visit


def returning_cookies() -> list[str]:
    landing = run(b"ref=caf%C3%A9+partner")
    assert landing is not None
    ours = cookie_header(landing)
    click = set_cookie_map(landing)["affy_click_id"]
    return [
        ours,
        "theme=dark; " + ours + "; _ga=1",
        ours.replace("affy_click_id=", "xaffy_click_id=", 1),  # not our cookie name
        f"affy_session_id={click}",  # session only
        f"affy_click_id=bad id!; affy_session_id={click}",  # forged click, valid session
        f"affy_click_id={SNIPPET_ID}; affy_click_id_at=17.{_crc(SNIPPET_ID)}.b%%",
        f"affy_click_id = {SNIPPET_ID} ;affy_click_id_at=17.{_crc(SNIPPET_ID)}.rAb",
        f"affy_click_id={SNIPPET_ID}; affy_click_id_at=17.{_crc(SNIPPET_ID)}x",
        "affy_click_id=short; affy_session_id=",
        "",
    ]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_returning_visit_equals_the_eager_reading(method: str) -> None:
    for cookie in returning_cookies():
        d = run(method=method, cookie=cookie) if cookie else run(method=method)
        expected = eager_visit(cookie, method)
        if d is not None and d.cookies:  # a re-issue: checked by the tests above
            assert method == "GET" and d.visit is not None and d.visit.reissued
            continue
        assert (d.visit if d is not None else None) == expected, cookie
        if d is not None and d.visit is not None:
            assert isinstance(d.visit, Visit) and repr(d.visit) == repr(expected)
            assert expected == d.visit and d.visit.referred


def test_lazy_fields_set_by_code_are_kept() -> None:
    landing = run(b"ref=aff_demo")
    assert landing is not None
    d = run(method="POST", cookie=cookie_header(landing))
    assert d is not None and d.visit is not None
    visit = d.visit
    visit.affiliate_reference = "set-by-the-app"  # before the companion was read
    visit.email = "ann@example.com"
    assert visit.clicked_at == int(NOW)  # read now
    assert visit.affiliate_reference == "set-by-the-app"
    assert visit.email == "ann@example.com" and visit.customer_id is None
    assert visit.session_id == landing.visit.session_id if landing.visit else False
    with pytest.raises(AttributeError):
        visit.no_such_field  # type: ignore[attr-defined]  # noqa: B018
    copy = dataclasses.replace(visit, customer_id="42")
    assert dataclasses.asdict(copy) == {**dataclasses.asdict(visit), "customer_id": "42"}
    with pytest.raises(TypeError):
        hash(visit)


@pytest.mark.parametrize(
    "query",
    [b"q=ref", b"refx=1", b"xref=1&aff", b"ref", b"page=2&utm_source=x", b"r%65f=a", b"ref=a"],
)
def test_query_precheck_never_hides_a_landing(query: bytes) -> None:
    attribution = Attribution(SETTINGS)
    found = referral_from_query(query, SETTINGS.ref_params)[1] is not None
    assert attribution.might_land(query) or not found
    assert attribution.might_land(query.decode("latin-1")) == attribution.might_land(query)
    d = run(query)
    assert (d is not None and d.visit is not None and d.visit.landed) == found