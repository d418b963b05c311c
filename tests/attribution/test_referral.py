"""The query rules: the affiliate reference in a raw query string, plausible values."""

from __future__ import annotations

import pytest

from affy_middleware import Settings
from affy_middleware.attribution.referral import plausible_value, referral_from_query

SETTINGS = Settings(client_id=7)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param(b"ref=abc", "abc", id="plain"),
        pytest.param(b"via=v&ref=r&aff=a&affy_ref=x", "x", id="settings-order-wins"),
        pytest.param(b"aff=a&ref=r", "r", id="ref-before-aff"),
        pytest.param(b"ref=&aff=a", "a", id="empty-falls-through"),
        pytest.param(b"ref=%0Abad&via=good", "good", id="control-char-falls-through"),
        pytest.param(b"ref=" + b"x" * 129 + b"&via=v", "v", id="too-long-falls-through"),
        pytest.param(b"ref=" + b"x" * 128, "x" * 128, id="128-ok"),
        pytest.param(b"ref=caf%C3%A9", "café", id="percent-utf8"),
        pytest.param(b"ref=caf%E9", None, id="percent-latin1-ignored"),
        pytest.param("ref=café".encode(), "café", id="raw-utf8"),
        pytest.param(b"ref=a+b", "a b", id="plus-is-space"),
        pytest.param(b"%72ef=enc", "enc", id="encoded-name"),
        pytest.param(b"ref=first&ref=second", "first", id="repeated-first"),
        pytest.param(b"ref=%00&ref=second", "second", id="repeated-first-plausible"),
        pytest.param(b"ref=a%3Bb%22c", 'a;b"c', id="semicolon-quote-kept-as-text"),
        pytest.param(b"reference=x&xref=y", None, id="similar-names"),
        pytest.param(b"&&=&ref", None, id="junk"),
        pytest.param(b"ref=%ZZ", "%ZZ", id="bad-escape-literal"),
    ],
)
def test_referral_from_query(query: bytes, expected: str | None) -> None:
    assert referral_from_query(query, SETTINGS.ref_params)[1] == expected


@pytest.mark.parametrize(
    "raw,expected",
    [
        (" abc ", "abc"),
        ("", None),
        ("   ", None),
        ("a\tb", None),
        ("a\x7fb", None),
        ("x" * 128, "x" * 128),
        ("x" * 129, None),
        (None, None),
    ],
)
def test_plausible_value(raw: str | None, expected: str | None) -> None:
    assert plausible_value(raw) == expected
