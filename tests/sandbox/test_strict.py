"""The sandbox is as strict as AFFY about order (docs/affy-api.md, "Order"): a registration whose
click is unknown is refused with 404 and recorded nowhere, and a lead by session that comes
before any click of its session is recorded *unattributed*, visible per event and as a count
in ``/_sandbox/events`` and on the dashboard. Over real HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from affy_middleware.sandbox import SandboxServer

#: AFFY's tracking paths (docs/affy-api.md).
API_PATHS = {
    "click": "/api/v1/tracking/click",
    "registration": "/api/v1/tracking/registration",
    "registration_lead": "/api/v1/tracking/lead/registration",
    "payment": "/api/v1/tracking/lead/payment",
}
CLICK = {
    "clientId": 1,
    "affiliateReference": "abc123",
    "clickId": "ck_1",
    "sessionId": "sess_1",
}
REGISTRATION_LEAD = {"clientId": 1, "leadType": "REGISTRATION", "customerEmail": "a@b.example"}
PAYMENT = {"clientId": 1, "leadType": "PAYMENT", "leadValue": 9.5}


@pytest.fixture
def http(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url, timeout=10) as client:
        yield client


def recorded(http: httpx.Client, kind: str | None = None) -> dict[str, Any]:
    params = {} if kind is None else {"kind": kind}
    response = http.get("/_sandbox/events", params=params)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def unattributed_on_dashboard(http: httpx.Client) -> int:
    page = http.get("/").text
    found = re.search(r'<span id="unattributed"[^>]*>(\d+)</span>', page)
    assert found is not None, page
    return int(found.group(1))


@pytest.mark.parametrize("click_id", ["ck_never_sent", 987654], ids=["our-id", "affy-int-id"])
def test_a_registration_with_an_unknown_click_is_refused_with_404(
    sandbox: SandboxServer, http: httpx.Client, click_id: str | int
) -> None:
    response = http.post(
        API_PATHS["registration"],
        json={"clickId": click_id, "email": "a@b.example"},
        headers={"Idempotency-Key": "reg-1"},
    )
    assert response.status_code == 404
    assert response.json()["field"] == "clickId"
    assert "unknown click id" in response.json()["message"]
    assert recorded(http)["events"] == []
    assert [(r["path"], r["status"]) for r in sandbox.requests()] == [
        (API_PATHS["registration"], 404)
    ]
    # The click arriving later does not resurrect the refused registration.
    assert http.post(API_PATHS["click"], json={**CLICK, "clickId": "ck_never_sent"}).is_success
    assert recorded(http, "registration")["events"] == []


@pytest.mark.parametrize(
    ("kind", "body"),
    [("registration_lead", REGISTRATION_LEAD), ("payment", PAYMENT)],
    ids=["registration-lead", "payment"],
)
def test_a_session_lead_before_its_click_is_recorded_unattributed(
    http: httpx.Client, kind: str, body: dict[str, Any]
) -> None:
    early = http.post(API_PATHS[kind], json={**body, "sessionId": "sess_1"})
    assert early.status_code == 201  # accepted: AFFY does not refuse it, it loses it
    assert http.post(API_PATHS["click"], json=CLICK).status_code == 201
    late = http.post(API_PATHS[kind], json={**body, "sessionId": "sess_1"})
    assert late.status_code == 201

    listed = recorded(http, kind)
    assert [e["unattributed"] for e in listed["events"]] == [True, False]
    assert [e["affiliate_reference"] for e in listed["events"]] == [None, "abc123"]
    assert listed["unattributed"] == 1
    assert recorded(http)["unattributed"] == 1
    assert recorded(http, "click")["unattributed"] == 0
    assert unattributed_on_dashboard(http) == 1


def test_the_server_object_counts_unattributed_leads(
    sandbox: SandboxServer, http: httpx.Client
) -> None:
    assert sandbox.unattributed() == 0
    http.post(API_PATHS["payment"], json={**PAYMENT, "sessionId": "organic-1"})
    assert sandbox.unattributed() == 1


def test_clicks_and_registrations_by_click_are_never_unattributed(http: httpx.Client) -> None:
    assert http.post(API_PATHS["click"], json=CLICK).status_code == 201
    registration = http.post(API_PATHS["registration"], json={"clickId": "ck_1"})
    assert registration.status_code == 201
    listed = recorded(http)
    assert [(e["kind"], e["unattributed"]) for e in listed["events"]] == [
        ("click", False),
        ("registration", False),
    ]
    assert listed["unattributed"] == 0
    assert unattributed_on_dashboard(http) == 0


def test_the_dashboard_marks_each_unattributed_lead(http: httpx.Client) -> None:
    for i in range(3):
        response = http.post(API_PATHS["payment"], json={**PAYMENT, "sessionId": f"organic-{i}"})
        assert response.status_code == 201
    page = http.get("/").text
    assert unattributed_on_dashboard(http) == 3
    assert page.count("(unattributed: no click for this session)") == 3
    assert recorded(http)["unattributed"] == 3
    http.post("/_sandbox/reset")
    assert unattributed_on_dashboard(http) == 0
