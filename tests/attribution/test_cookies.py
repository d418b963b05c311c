"""Cookie values: the token rule, the header scan, our ids and the companion format."""

from __future__ import annotations

import os
import re

import pytest

from affy_middleware._wire import Event
from affy_middleware.attribution.cookies import crc_part as _crc
from affy_middleware.attribution.cookies import is_token, new_id, parse_cookies, read_companion

#: A click id as AFFY's snippet writes it.
SNIPPET_ID = "123e4567-e89b-12d3-a456-426614174000"


@pytest.mark.parametrize(
    "value",
    [
        "123e4567-e89b-12d3-a456-426614174000",
        "bazqYSEDkVh0A7WrI0QcMA0X",
        "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6",
        "affy_1732420000.k3j4",
    ],
)
def test_snippet_like_ids_are_tokens(value: str) -> None:
    assert is_token(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "short",
        "x" * 129,
        "abc def ghi",
        "abc;defghi",
        'abc"defghij',
        "abcdefgh\r\n",
        "é" * 10,
        "abc+def/ghi=",
        "<script>alert(1)</script>",
    ],
)
def test_forged_ids_are_rejected(value: str) -> None:
    assert not is_token(value)


def test_parse_cookies_first_value_wins() -> None:
    names = frozenset({"a", "b"})
    assert parse_cookies("a=1; c=3; a=2;b= x ;ba=2; junk", names) == {"a": "1", "b": "x"}
    assert parse_cookies("xa=1; c=a=2", names) == {}


@pytest.mark.parametrize("stamp", ["\u00b2\u00b3", "-1", "1e9", "1" * 13])
def test_companion_stamp_must_be_ascii_digits(stamp: str) -> None:

    assert read_companion(f"{stamp}.{_crc(SNIPPET_ID)}", SNIPPET_ID) is None
    assert read_companion(f"17.{_crc(SNIPPET_ID)}.b%%", SNIPPET_ID) == (17.0, None)


def test_ids_are_unique_tokens_and_not_shared_with_a_forked_child() -> None:
    ids = [new_id() for _ in range(300)]
    assert len(set(ids)) == 300 and all(len(i) == 24 and is_token(i) for i in ids)
    event_ids = [Event(kind="click", body={}).event_id for _ in range(300)]
    assert len(set(event_ids)) == 300 and all(re.fullmatch(r"[0-9a-f]{32}", e) for e in event_ids)
    new_id()  # the pool now holds ids a careless child would hand out again
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave at once
        try:
            os.write(write, f"{new_id()} {Event(kind='click', body={}).event_id}".encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child_id, child_event_id = pipe.read().split()
    os.waitpid(pid, 0)
    assert child_id not in ids and child_id != new_id()
    assert child_event_id[:16] != event_ids[0][:16]  # a fresh random prefix
