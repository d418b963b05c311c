"""Hypothesis strategies and settings shared by the property-based middleware tests."""

from __future__ import annotations

from hypothesis import HealthCheck, assume, settings
from hypothesis import strategies as st

from affy_middleware.attribution.cookies import is_token, parse_cookies

#: One of our Set-Cookie values, whole (compile it as text, or ``.encode()`` it for bytes).
OUR_COOKIE_PATTERN = (
    r"^(affy_click_id|affy_session_id|affy_click_id_at)=([A-Za-z0-9._\-]+)"
    r"; Path=/; Max-Age=2592000; SameSite=Lax(; Secure)?(; HttpOnly)?$"
)
VALID_ID = "123e4567-e89b-12d3-a456-426614174000"
EXAMPLES = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Fragments that tend to break naive parsers, mixed with random latin-1 text.
fragment = st.sampled_from(
    [
        "ref=",
        "aff=",
        "via=",
        "affy_ref=",
        "utm_source=",
        "&",
        "=",
        ";",
        " ",
        "%",
        "%0d%0a",
        "\r\n",
        '"',
        "%22",
        "%3B",
        "+",
        "%FF",
        "\xe9",
        "\x00",
        "affy_click_id=",
        "affy_session_id=",
        "affy_click_id_at=",
        "1800000000.",
        VALID_ID,
        "x" * 129,
        "Set-Cookie: evil=1",
        "bot",
        "Mozilla/5.0",
        ",",
    ]
)
latin1 = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=40)
messy = st.lists(st.one_of(fragment, latin1), max_size=8).map("".join)
#: A request method for the properties (GET weighted twice).
methods = st.sampled_from(["GET", "GET", "POST", "HEAD"])
#: A user agent: anything, or a real browser's.
user_agents = st.one_of(messy, st.just("Mozilla/5.0 (X11) Chrome/120"))


def forged_cookies(cookie: str) -> tuple[str, str, str]:
    """A Cookie header with a forged click id (``x;`` + ``cookie``) and an oversized session
    id: (the header, the forged value, the oversized value).

    ``"x;" + cookie`` can smuggle in a well-formed cookie of ours
    (``x;affy_session_id=1800000000.``): that one is valid and rightly used, so it is no
    forged input, and the example is skipped (``assume``).
    """
    forged = "x;" + cookie if cookie else '"forged"'
    oversized = "a" * 129
    header = f"affy_click_id={forged}; affy_session_id={oversized}"
    found = parse_cookies(header, ["affy_click_id", "affy_session_id"])
    assume(not any(is_token(value) for value in found.values()))
    return header, forged, oversized
