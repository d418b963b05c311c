"""Issue 10 item 1, under real uWSGI (the ``pyuwsgi`` wheel): uWSGI forks its workers
without running Python's at-fork hooks. With the app loaded in the master
(``--master --processes 2`` without ``--lazy-apps``) both workers make the same event
ids, so AFFY answers one worker's events as replays of the other's, the library counts
them as sent, and they are lost. Every click must reach AFFY once, with or without
``--enable-threads`` and ``--lazy-apps``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.process

LANDINGS = 60


@pytest.mark.parametrize(
    "options",
    [
        pytest.param((), id="preloaded"),
        pytest.param(("--enable-threads",), id="preloaded-threads"),
        pytest.param(("--lazy-apps",), id="lazy-apps"),
        pytest.param(("--lazy-apps", "--enable-threads"), id="lazy-apps-threads"),
    ],
)
def test_every_click_reaches_affy_once_from_two_uwsgi_workers(
    serve_shop: Any, fleet: Any, affy: httpx.Client, options: tuple[str, ...]
) -> None:
    served = serve_shop("uwsgi", 2, *options)
    journeys = fleet.land_many(served.url, LANDINGS)
    fleet.wait_for_answers(LANDINGS, timeout=10)
    served.stop()
    assert len({j.workers[0] for j in journeys}) == 2  # the premise: both workers served
    result = fleet.outcome(journeys)
    assert result.replayed == 0, result.summary()
    assert result.lost["click"] == 0, result.summary()


def test_the_uwsgi_threads_warning_is_true(serve_shop: Any, fleet: Any) -> None:
    served = serve_shop("uwsgi", 2, "--lazy-apps")  # no --enable-threads
    journeys = fleet.land_many(served.url, 10)
    fleet.wait_for_answers(10, timeout=10)
    served.stop()
    delivered = fleet.outcome(journeys).lost["click"] == 0
    claims_queued = "events stay queued" in served.output()
    assert not (delivered and claims_queued), "delivered, yet the log says events stay queued"


def test_journeys_under_uwsgi_preloaded_lose_nothing(
    serve_shop: Any, fleet: Any, sandbox: Any
) -> None:
    served = serve_shop("uwsgi", 2, "--enable-threads")
    sandbox.set_faults(latency=0.05)
    journeys = fleet.walk_many(served.url, 200, threads=16)
    fleet.wait_for_answers(3 * 200, timeout=30)
    served.stop()
    result = fleet.outcome(journeys)
    assert result.refused_registrations == 0, result.summary()
    assert result.unattributed == 0, result.summary()
    assert result.lost == {"click": 0, "registration": 0, "payment": 0}, result.summary()
    assert result.replayed == result.repeated_keys == 0, result.summary()
