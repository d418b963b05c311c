"""Per-visit ordering, without threads: which event may go next."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from affy_middleware.delivery.threaded.ordering import VisitOrder


@dataclass(eq=False)
class Ev:
    name: str
    key: str | None


def order() -> VisitOrder[Ev]:
    return VisitOrder(key=lambda e: e.key)


def test_a_visit_goes_one_event_at_a_time_in_order() -> None:
    o = order()
    click, signup, payment = Ev("click", "v1"), Ev("signup", "v1"), Ev("payment", "v1")
    for e in (click, signup, payment):
        o.push(e)
    assert o.take() is click
    assert o.take() is None  # the rest of the visit waits behind the click
    assert o.in_flight == 1
    assert o.done(click) is signup  # handed to the same sender, already out
    assert o.take() is None
    assert o.done(signup) is payment
    assert o.done(payment) is None
    assert o.in_flight == 0 and o.waiting() == [] and o.take() is None


def test_other_visits_and_keyless_events_go_in_parallel() -> None:
    o = order()
    a1, a2, b1 = Ev("a1", "a"), Ev("a2", "a"), Ev("b1", "b")
    free1, free2 = Ev("f1", None), Ev("f2", None)
    for e in (a1, a2, b1, free1, free2):
        o.push(e)
    taken = [o.take() for _ in range(5)]
    assert taken == [a1, b1, free1, free2, None]  # a2 parked behind a1, not blocking others
    assert o.in_flight == 4
    assert o.done(free1) is None and o.done(b1) is None
    assert o.done(a1) is a2


def test_an_event_pushed_while_its_visit_is_out_still_waits() -> None:
    o = order()
    first = Ev("first", "v")
    o.push(first)
    assert o.take() is first
    late = Ev("late", "v")
    o.push(late)
    assert o.take() is None
    assert o.done(first) is late


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        pytest.param(["a", "a", "a"], ["a0"], id="one-visit"),
        pytest.param(["a", "b", "c"], ["a0", "b1", "c2"], id="three-visits"),
        pytest.param(["a", "b", "a", "b"], ["a0", "b1"], id="two-visits-interleaved"),
        pytest.param([None, None], ["None0", "None1"], id="no-keys"),
    ],
)
def test_what_goes_out_first(keys: list[str | None], expected: list[str]) -> None:
    o = order()
    for i, key in enumerate(keys):
        o.push(Ev(f"{key}{i}", key))
    out = []
    while (e := o.take()) is not None:
        out.append(e.name)
    assert out == expected
    assert len(o.waiting()) == len(keys) - len(expected)


def test_a_parked_item_holds_its_visit_but_no_sender() -> None:
    o = order()
    lead, payment, other = Ev("lead", "v1"), Ev("payment", "v1"), Ev("other", "v2")
    for e in (lead, payment):
        o.push(e)
    assert o.take(now=0.0) is lead
    o.park(lead, at=10.0)  # e.g. waiting for its click
    assert o.in_flight == 0  # nobody holds it
    o.push(other)
    assert o.take(now=1.0) is other  # other visits go on meanwhile
    assert o.take(now=1.0) is None  # the payment stays behind its lead
    assert o.wait_time(5.0, now=1.0) == 5.0 and o.wait_time(60.0, now=1.0) == 9.0
    assert set(map(id, o.waiting())) == {id(lead), id(payment)}
    assert o.take(now=10.0) is lead  # its time has come: out again, still first
    assert o.done(lead) is payment


def test_parked_items_come_back_in_time_order() -> None:
    o = order()
    a, b = Ev("a", "a"), Ev("b", "b")
    o.push(a)
    o.push(b)
    assert o.take(now=0.0) is a and o.take(now=0.0) is b
    o.park(a, at=3.0)
    o.park(b, at=2.0)
    assert o.wait_time(60.0, now=0.0) == 2.0
    assert o.take(now=2.5) is b and o.take(now=2.5) is None and o.take(now=3.0) is a


def test_heads_include_parked_items() -> None:
    # health() reads the oldest undelivered event from the heads: a parked retry is one.
    o = order()
    parked, behind, other = Ev("parked", "v1"), Ev("behind", "v1"), Ev("other", "v2")
    for e in (parked, behind, other):
        o.push(e)
    assert o.take(now=0.0) is parked
    o.park(parked, at=100.0)
    assert o.take(now=0.0) is other
    assert {e.name for e in o.heads()} == {"parked", "behind", "other"}
