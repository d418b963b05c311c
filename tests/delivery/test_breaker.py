"""The pipeline-wide pause (the breaker), on its own clock: no threads, no network."""

from __future__ import annotations

from affy_middleware.delivery.sending.breaker import Breaker, RetryPolicy


def test_breaker_only_the_probe_lengthens_the_pause() -> None:
    policy = RetryPolicy(base=1.0, cap=100.0, failure_threshold=3, min_pause=0.0)
    breaker = Breaker(policy, rand=lambda: 1.0)
    for _ in range(3):
        breaker.failure(0.0, probe=False, retry_after=None)
    assert breaker.paused_until == 2.0 and breaker.level == 1
    for _ in range(5):  # requests that were already out fail too
        breaker.failure(0.1, probe=False, retry_after=None)
    assert breaker.paused_until == 2.0
    assert breaker.wait_time(2.5) is None and breaker.admit() is True  # the probe
    assert breaker.wait_time(2.5) == 0.5  # others wait for its answer
    breaker.failure(2.6, probe=True, retry_after=None)
    assert breaker.paused_until == 2.6 + 4.0
    breaker.success()
    assert breaker.wait_time(7.0) is None and breaker.admit() is False
