"""What a failed send means: the failure table (first match first) and the verdicts.

One row per kind of failure; ``attempt.py`` acts on the verdict. A new kind of "not yet"
or "our set-up is wrong" is one more row here.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from ..._wire import Event
from .breaker import is_misconfigured, is_retryable, is_unknown_click

__all__ = ["Outcome", "Rule", "Verdict", "classify", "RULES", "DELIVERED", "EXPIRED"]


class Verdict(enum.Enum):
    """What became of one attempt."""

    #: AFFY accepted the event: forget it.
    DELIVERED = "delivered"
    #: A passing failure: this event alone tries again at ``Outcome.at``.
    RETRY = "retry"
    #: AFFY is failing (an outage, a Retry-After): nothing goes out before ``Outcome.at``,
    #: then one probe.
    PAUSE = "pause"
    #: Refused for good (a 4xx other than 408/429, or a bug of ours): drop it.
    REJECTED = "rejected"
    #: Older than ``retry_deadline``: given up without sending.
    EXPIRED = "expired"


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    #: ``time.monotonic()`` when the event (RETRY) or the pipeline (PAUSE) may go again.
    at: float = 0.0
    error: BaseException | None = None

    @property
    def final(self) -> bool:
        """Whether the event is done with (its outbox row can go)."""
        return self.verdict in (Verdict.DELIVERED, Verdict.REJECTED, Verdict.EXPIRED)


class Rule(NamedTuple):
    """One row of the failure table: which errors, what they mean, what they count."""

    matches: Callable[[BaseException], bool] | None
    verdict: Verdict
    #: A counter to bump besides ``failed`` (which every failure bumps), if any.
    counter: str | None = None
    #: Whether the failure says AFFY is unwell (it then feeds the pipeline-wide pause), or
    #: AFFY answered and only this event must wait (it backs off alone).
    outage: bool = True


#: How a failed send is classified, first match first. 401/403 and 3xx pause the whole
#: pipeline at once (our key or URL is wrong; the events are kept, a probe tells when AFFY
#: accepts again); a 404 on a lead is "not yet" (its click is on its way, maybe from
#: another process), bounded by ``click_wait``; network errors, 408, 429, 5xx back off.
RULES: tuple[Rule, ...] = (
    Rule(is_misconfigured, Verdict.PAUSE, "config_errors"),
    Rule(is_unknown_click, Verdict.RETRY, "waiting_for_click", outage=False),
    Rule(is_retryable, Verdict.RETRY),
)
#: What a failure no rule matches means.
OTHERWISE = Rule(None, Verdict.REJECTED, "dropped_rejected")
#: A lead AFFY still does not know the click of once ``click_wait`` is over.
CLICK_UNKNOWN = Rule(None, Verdict.REJECTED, "dropped_click_unknown")

DELIVERED = Outcome(Verdict.DELIVERED)
EXPIRED = Outcome(Verdict.EXPIRED)


def classify(exc: BaseException, event: Event | None = None, waited_out: bool = False) -> Rule:
    """The rule a failed send of ``event`` falls under (``waited_out``: the lead has
    waited ``click_wait`` for its click already)."""
    for rule in RULES:
        if rule.matches is not None and rule.matches(exc):
            if rule.matches is is_unknown_click:
                if event is not None and event.kind == "click":
                    return OTHERWISE
                if waited_out:
                    return CLICK_UNKNOWN
            return rule
    return OTHERWISE
