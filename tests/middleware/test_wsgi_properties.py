"""Bad input, property-based: random query strings, cookies and user agents through Flask."""

from __future__ import annotations

import re
from typing import Any

from _strategies import (
    EXAMPLES,
    OUR_COOKIE_PATTERN,
    forged_cookies,
    messy,
    methods,
    user_agents,
)
from flask import Flask, request
from hypothesis import given
from hypothesis import strategies as st

from affy_middleware import Settings, delivery, track_registration
from affy_middleware.attribution import Attribution, Visit, WSGIRequest
from affy_middleware.attribution.cookies import TOKEN, is_token, parse_cookies, read_companion
from affy_middleware.attribution.referral import (
    _param_table,
    _referral,
    _referral_bytes,
    referral_from_query,
)
from affy_middleware.flask import Affy

OUR_COOKIE = re.compile(OUR_COOKIE_PATTERN)
RULES = Settings(client_id=1, api_url="http://127.0.0.1:9")


def build(tracked: bool) -> Flask:
    app = Flask(__name__)

    @app.route("/", methods=["GET", "POST", "HEAD"])
    def index() -> tuple[str, int, dict[str, str]]:
        return "page:" + request.args.get("q", ""), 203, {"X-App": "1", "Set-Cookie": "a=1"}

    @app.route("/signup", methods=["POST"])
    @track_registration
    def signup() -> tuple[str, int]:
        return "signed " + str(len(request.form)), 201

    @app.get("/boom")
    def boom() -> str:
        raise ValueError("app bug")

    if tracked:
        Affy(app, settings=Settings(client_id=1, api_url="http://127.0.0.1:9"))
    return app


BARE = build(False).test_client(use_cookies=False)
TRACKED = build(True).test_client(use_cookies=False)


def call(client: Any, method: str, path: str, query: str, cookie: str, ua: str) -> Any:
    return client.open(
        path,
        method=method,
        environ_overrides={
            "QUERY_STRING": query,
            "HTTP_COOKIE": cookie,
            "HTTP_USER_AGENT": ua,
        },
        data={"email": "p@example.com"} if method == "POST" else None,
    )


def ours(response: Any) -> list[str]:
    return [c for c in response.headers.getlist("Set-Cookie") if c != "a=1"]


@EXAMPLES
@given(
    method=methods,
    query=messy,
    cookie=messy,
    ua=user_agents,
)
def test_status_body_and_headers_never_change(
    method: str, query: str, cookie: str, ua: str
) -> None:
    with delivery.capture() as events:
        tracked = call(TRACKED, method, "/", query, cookie, ua)
    bare = call(BARE, method, "/", query, cookie, ua)
    assert tracked.status == bare.status and tracked.data == bare.data
    app_headers = [(k, v) for k, v in tracked.headers if not (k == "Set-Cookie" and v != "a=1")]
    assert app_headers == list(bare.headers)
    for value in ours(tracked):
        assert OUR_COOKIE.match(value), value
        assert "\r" not in value and "\n" not in value
    # Whatever the visitor sent, ids forwarded to AFFY are tokens; invalid cookies never go.
    for event in events:
        assert TOKEN.fullmatch(event.body["clickId"])
        assert TOKEN.fullmatch(event.body["sessionId"])
        ref = event.body["affiliateReference"]
        assert ref.isprintable() and 0 < len(ref) <= 128


@EXAMPLES
@given(cookie=messy, query=messy)
def test_forged_or_oversized_cookies_are_ignored(cookie: str, query: str) -> None:
    header, forged, oversized = forged_cookies(cookie)
    with delivery.capture() as events:
        response = call(TRACKED, "POST", "/signup", query, header, "Mozilla/5.0 Chrome/1")
    assert response.status_code == 201
    assert events == []  # not a referred visitor: nothing reported, nothing forwarded
    with delivery.capture() as events:
        landing = call(TRACKED, "GET", "/", "ref=aff", header, "Mozilla/5.0 Chrome/1")
    assert landing.status_code == 203
    (click,) = events
    assert click.body["sessionId"] != oversized and click.body["clickId"] != forged
    assert all(OUR_COOKIE.match(c) for c in ours(landing))


@EXAMPLES
@given(ref=st.text(max_size=140), other=st.text(max_size=20))
def test_no_header_injection_from_refs(ref: str, other: str) -> None:
    from urllib.parse import quote

    query = f"ref={quote(ref)}&utm_source={quote(other)}"
    with delivery.capture() as events:
        response = call(TRACKED, "GET", "/", query, "", "Mozilla/5.0 Chrome/1")
    for value in ours(response):
        assert OUR_COOKIE.match(value), value
    plausible = ref.strip(" ")
    if plausible and len(plausible) <= 128 and plausible.isprintable():
        assert events[0].body["affiliateReference"] == plausible
    else:
        assert events == [] and ours(response) == []


def test_a_view_that_raises_still_raises() -> None:
    with delivery.capture() as events:
        tracked = call(TRACKED, "GET", "/boom", "ref=aff", "", "Mozilla/5.0 Chrome/1")
    bare = call(BARE, "GET", "/boom", "ref=aff", "", "Mozilla/5.0 Chrome/1")
    assert tracked.status_code == bare.status_code == 500
    assert tracked.data == bare.data and len(events) == 1


@EXAMPLES
@given(query=messy, cookie=messy, method=st.sampled_from(["GET", "POST"]))
def test_request_path_shortcuts_agree_with_the_full_rules(
    query: str, cookie: str, method: str
) -> None:
    # The query pre-check never hides a landing; the lazily read visit equals the eager one.
    raw = query.encode("latin-1")
    rules = Attribution(RULES)
    if referral_from_query(raw, RULES.ref_params)[1] is not None:
        assert rules.might_land(raw) and rules.might_land(query)
    decision = rules.decide(WSGIRequest({"REQUEST_METHOD": method}, "", cookie))
    found = parse_cookies(cookie, ["affy_click_id", "affy_session_id", "affy_click_id_at"])
    click_id, session_id = found.get("affy_click_id"), found.get("affy_session_id")
    click_id = click_id if is_token(click_id) else None
    session_id = session_id if is_token(session_id) else None
    companion = found.get("affy_click_id_at")
    parsed = read_companion(companion, click_id) if companion and click_id else None
    if click_id is None and session_id is None:
        assert decision is None
        return
    assert decision is not None
    visit, cookies, event = decision
    # No user agent: no navigation, so a snippet's click cookie is not re-issued either.
    assert cookies == () and event is None and not visit.reissued
    assert isinstance(visit, Visit)
    assert (visit.click_id, visit.session_id, visit.method) == (click_id, session_id, method)
    assert (visit.clicked_at, visit.affiliate_reference) == (parsed or (None, None))


@EXAMPLES
@given(query=messy)
def test_the_plain_query_scan_equals_the_general_one(query: str) -> None:
    table = _param_table(("affy_ref", "ref", "aff", "via", "ünï"))
    raw = query.encode("latin-1")
    for candidate in (raw, query.encode("utf-8"), raw.replace(b"%", b"").replace(b"+", b"")):
        assert _referral(candidate, table) == _referral_bytes(candidate, table)
