"""``CookieRules.returning``: what the cookie header alone decides, and ``decide``'s tail."""

from __future__ import annotations

from _strategies import EXAMPLES, VALID_ID, messy
from hypothesis import given
from hypothesis import strategies as st

from affy_middleware import Settings
from affy_middleware.attribution import Attribution, WSGIRequest
from affy_middleware.attribution.cookies import companion_value
from affy_middleware.attribution.decide import REISSUE
from affy_middleware.attribution.visit import LazyVisit

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
RULES = Attribution(Settings(client_id=1, api_url="http://127.0.0.1:9"))
OURS = f"affy_click_id_at={companion_value(VALID_ID, 1_700_000_000, 'aff')}"


def test_our_click_cookie_is_a_visit_read_lazily() -> None:
    cookie = f"theme=dark; affy_click_id={VALID_ID}; {OURS}; affy_session_id={VALID_ID}"
    visit = RULES.returning("GET", cookie, "NATIVE")
    assert isinstance(visit, LazyVisit)
    assert (visit.click_id, visit.session_id, visit.native) == (VALID_ID, VALID_ID, "NATIVE")
    assert (visit.affiliate_reference, visit.clicked_at) == ("aff", 1_700_000_000.0)


def test_a_click_cookie_without_our_companion_needs_the_full_decision() -> None:
    assert RULES.returning("GET", f"affy_click_id={VALID_ID}", None) is REISSUE
    # Not on a POST, and not with tracking off: nothing would be re-issued there.
    assert RULES.returning("POST", f"affy_click_id={VALID_ID}", None) is not REISSUE
    off = Attribution(Settings(client_id=None))
    assert off.returning("GET", f"affy_click_id={VALID_ID}", None) is not REISSUE


def test_nothing_of_ours_is_no_visit() -> None:
    for cookie in (None, "", "theme=dark", "affy_click_id=bad!", f"xaffy_click_id={VALID_ID}"):
        assert RULES.returning("GET", cookie, None) is None


@EXAMPLES
@given(
    cookie=st.one_of(
        messy,
        st.lists(
            st.sampled_from(
                [f"affy_click_id={VALID_ID}", f"affy_session_id={VALID_ID}", OURS, "a=1", ""]
            ),
            max_size=4,
        ).map("; ".join),
    ),
    query=st.sampled_from(["", "q=1", "page=2&sort=new"]),
    method=st.sampled_from(["GET", "POST", "HEAD"]),
)
def test_decide_ends_in_returning(cookie: str, query: str, method: str) -> None:
    # A query that cannot land: decide() answers what returning() answers.
    environ = {"REQUEST_METHOD": method, "HTTP_USER_AGENT": CHROME, "wsgi.url_scheme": "https"}
    request = WSGIRequest(environ, query, cookie)
    assert not RULES.might_land(query)
    visit = RULES.returning(method, cookie, environ)
    decision = RULES.decide(request, now=1_800_000_000)
    if visit is None:
        assert decision is None
    elif visit is REISSUE:
        assert decision is not None and decision[0].reissued and decision[1]
    else:
        assert decision == (visit, (), None)
