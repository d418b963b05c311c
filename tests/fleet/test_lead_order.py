"""Issue 10, "leads that overtake their click": under ``gunicorn -w 4`` (and ``uvicorn
--workers 2``) a visitor's landing, signup and payment reach different workers, each with
its own queue, so a lead can reach AFFY before its click: a registration refused with 404
(and dropped), a payment recorded without its affiliate. AFFY must never get a visit's lead
before its click, whichever worker handled each step and whether or not AFFY was just down.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from affy_middleware.sandbox import SandboxServer

pytestmark = pytest.mark.process

JOURNEYS = 300
#: AFFY's answer time: a healthy API across the internet.
LATENCY = 0.05
#: Longest AFFY is down in the outage test (it comes back once the visitors have landed).
OUTAGE = 5.0


def test_quick_journeys_across_four_workers_lose_nothing(
    serve_shop: Any, fleet: Any, affy: httpx.Client, sandbox: SandboxServer
) -> None:
    served = serve_shop("gunicorn", 4)
    sandbox.set_faults(latency=LATENCY)
    journeys = fleet.walk_many(served.url, JOURNEYS, threads=16)
    fleet.wait_for_answers(3 * JOURNEYS, timeout=30)
    served.stop()
    assert sum(len(set(j.workers)) > 1 for j in journeys) > JOURNEYS // 4  # the premise
    assert_nothing_lost(fleet.outcome(journeys))


def test_a_click_backing_off_after_an_outage_is_not_overtaken(
    serve_shop: Any, fleet: Any, affy: httpx.Client, sandbox: SandboxServer
) -> None:
    served = serve_shop("gunicorn", 4)
    sandbox.set_faults(outage_seconds=OUTAGE)
    # Landings during the outage: their clicks fail and back off, each in its worker.
    landed = fleet.land_many(served.url, 16)
    # Until each worker's breaker has paused (3 failures in a row each), so the clicks
    # are backing off, not just failed once.
    failed = fleet.wait_for_failures(3 * 4, timeout=OUTAGE)
    assert affy.get("/_sandbox/faults").json()["outage_seconds"] > 0, "too slow a machine"
    assert failed >= 3 * 4, failed
    sandbox.clear_faults()
    # AFFY is back; the clicks are still backing off while the visitors sign up and
    # pay at once, on whichever worker takes each request.
    journeys = fleet.finish_all(served.url, landed) + fleet.walk_many(served.url, 200, start=100)
    fleet.wait_for_answers(3 * len(journeys), timeout=30)
    served.stop()
    assert_nothing_lost(fleet.outcome(journeys))


def test_quick_journeys_across_two_uvicorn_workers_lose_nothing(
    serve_shop: Any, fleet: Any, affy: httpx.Client, sandbox: SandboxServer
) -> None:
    served = serve_shop("uvicorn", 2)
    sandbox.set_faults(latency=LATENCY)
    journeys = fleet.walk_many(served.url, JOURNEYS, threads=16)
    fleet.wait_for_answers(3 * JOURNEYS, timeout=30)
    served.stop()
    assert_nothing_lost(fleet.outcome(journeys))


def assert_nothing_lost(result: Any) -> None:
    """Issue 10's promise for a fleet: no lead refused or unattributed because it overtook
    its click, no event lost, none sent twice."""
    assert result.refused_registrations == 0, result.summary()
    assert result.unattributed == 0, result.summary()
    assert result.lost == {"click": 0, "registration": 0, "payment": 0}, result.summary()
    assert result.replayed == result.repeated_keys == 0, result.summary()
