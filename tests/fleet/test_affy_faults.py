"""Issue 10 items 3 to 6: an AFFY (or a proxy in front of it) that answers slowly, too
much, with a redirect, or with 401 after a key rotation. Each call must be bounded in time
and in the size read, and a misconfiguration (3xx, 401/403) keeps the events until AFFY
accepts them again. Each case runs in a fresh process against a misbehaving server."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.process

REPORT = """
import json, sys, time
from affy_middleware import flush, report_payment, stats

start = time.monotonic()
accepted = [report_payment("9.99", session_id=f"visit-{i:04d}") for i in range(__N__)]
reported = time.monotonic() - start
first = flush(__FIRST__)
first_stats = dict(stats())
second = flush(__SECOND__)
print(json.dumps({"accepted": accepted, "report_seconds": reported, "first": first,
                  "first_stats": first_stats, "second": second, "stats": dict(stats())}))
"""


def report(n: int, first: float, second: float) -> str:
    return (
        REPORT.replace("__N__", str(n))
        .replace("__FIRST__", str(first))
        .replace("__SECOND__", str(second))
    )


def test_a_slow_answer_is_bounded_by_the_timeout_in_sync_mode(
    broken_affy: Any, run_script: Any, env_for: Any
) -> None:
    broken_affy.misbehave("trickle")
    env = env_for(broken_affy.url, AFFY_DELIVERY="sync", AFFY_TIMEOUT="1")
    done = run_script(report(1, 0, 0), env)
    # One call of at most AFFY_TIMEOUT; the inline retries stay within the flush budget.
    assert done.result["report_seconds"] < 3.5, done.result


def test_one_stuck_call_does_not_starve_the_other_visits(
    broken_affy: Any, run_script: Any, env_for: Any
) -> None:
    broken_affy.slow_sessions = "visit-0000"  # the first visit's call hangs on the answer
    broken_affy.until = float("inf")
    env = env_for(broken_affy.url, AFFY_TIMEOUT="1")
    done = run_script(report(20, 3, 0), env)
    assert len(set(broken_affy.accepted)) >= 19, (done.result, broken_affy.accepted)


def test_a_huge_answer_is_not_read_whole(broken_affy: Any, run_script: Any, env_for: Any) -> None:
    broken_affy.misbehave("huge")
    done = run_script(report(1, 3, 0), env_for(broken_affy.url, AFFY_TIMEOUT="5"))
    # Loopback socket buffers hold a few MB; a bounded reader stops long before 64 MB.
    assert broken_affy.body_bytes < 16 * 1024 * 1024, broken_affy.body_bytes
    assert done.result["first_stats"]["sent"] == 0  # a 64 MB "success" is not a success


def test_a_redirect_keeps_the_events_until_affy_answers(
    broken_affy: Any, run_script: Any, env_for: Any
) -> None:
    broken_affy.misbehave("redirect", seconds=1.5)
    done = run_script(report(5, 1, 12), env_for(broken_affy.url))
    assert done.result["first_stats"]["dropped"] == 0, done.result["first_stats"]
    assert done.result["second"] is True, done.result["stats"]
    assert len(set(broken_affy.accepted)) == 5
    assert "redirect" in done.log.lower()  # said loudly


def test_a_rotated_key_pauses_delivery_and_keeps_the_spool(
    broken_affy: Any, run_script: Any, env_for: Any, tmp_path: Any
) -> None:
    broken_affy.misbehave("unauthorized", seconds=1.5)
    env = env_for(broken_affy.url, AFFY_SPOOL_PATH=str(tmp_path / "outbox.sqlite"))
    done = run_script(report(5, 1, 12), env)
    first = done.result["first_stats"]
    assert first["dropped"] == 0 and first["spooled"] == 5, first
    assert "affy doctor" in done.log  # the ERROR says what to run
    assert done.result["second"] is True, done.result["stats"]
    assert len(set(broken_affy.accepted)) == 5
