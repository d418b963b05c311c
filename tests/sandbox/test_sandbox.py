"""The sandbox over real HTTP: every path, auth, bad input, duplicates, faults, dashboard."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from affy_middleware._wire import API_PATHS
from affy_middleware.sandbox import SandboxServer

AUTH = {"Authorization": "Bearer test-key"}
CLICK = {
    "clientId": 1,
    "affiliateReference": "abc123",
    "clickId": "ck_1",
    "sessionId": "sess_1",
    "clickedUrl": "https://shop.example/?ref=abc123",
    "userAgent": "Mozilla/5.0",
}


def status_path(session_id: str) -> str:
    return API_PATHS["status"].format(session_id=session_id)


@pytest.fixture
def http(sandbox: SandboxServer) -> Any:
    with httpx.Client(base_url=sandbox.url, timeout=10) as client:
        yield client


def click(http: httpx.Client, **changes: Any) -> httpx.Response:
    return http.post(API_PATHS["click"], json={**CLICK, **changes})


def assert_alive(http: httpx.Client) -> None:
    response = http.get(status_path("still-there"), headers=AUTH)
    assert response.status_code == 200
    assert response.json()["hasAffiliate"] is False


# -- round trips ---------------------------------------------------------------------------


def test_click_registration_leads_and_status_link_attribution(
    sandbox: SandboxServer, http: httpx.Client
) -> None:
    response = click(http)
    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True and isinstance(body["clickId"], int)
    assert body["sessionId"] == "sess_1"
    affy_click_id = body["clickId"]

    response = http.post(API_PATHS["registration"], json={"clickId": "ck_1", "email": "a@b.c"})
    assert response.status_code == 201
    reg = response.json()
    assert reg["success"] is True and reg["clickId"] == affy_click_id
    assert isinstance(reg["leadId"], int)

    response = http.post(
        API_PATHS["registration_lead"],
        json={"clientId": 1, "leadType": "REGISTRATION", "sessionId": "sess_1"},
    )
    assert response.status_code == 201
    assert response.json()["conversionSource"] == "TRACKING_API"

    response = http.post(
        API_PATHS["payment"],
        content=b'{"clientId":1,"leadType":"PAYMENT","leadValue":99.00,"sessionId":"sess_1"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 201
    assert b'"leadValue":99.00' in response.content  # cents preserved on the wire
    pay = response.json()
    assert pay["success"] is True and pay["conversionSource"] == "TRACKING_API"
    assert isinstance(pay["leadId"], int) and pay["message"]

    response = http.get(status_path("sess_1"), headers=AUTH)
    assert response.status_code == 200
    status = response.json()
    assert status["sessionId"] == "sess_1" and status["hasAffiliate"] is True
    assert status["affiliateReference"] == "abc123" and status["clickId"] == "ck_1"
    assert status["clickedAt"].endswith("Z")

    kinds = [event["kind"] for event in sandbox.events()]
    assert kinds == ["click", "registration", "registration_lead", "payment"]
    assert all(event["affiliate_reference"] == "abc123" for event in sandbox.events())
    payment = sandbox.events("payment")[0]
    assert payment["body"]["leadValue"] == Decimal("99.00")
    assert payment["lead_value"] == Decimal("99.00")
    assert payment["received_at"] <= time.time()


def test_registration_accepts_affys_integer_click_id(http: httpx.Client) -> None:
    affy_id = click(http).json()["clickId"]
    response = http.post(API_PATHS["registration"], json={"clickId": affy_id})
    assert response.status_code == 201


def test_last_click_wins_for_leads_by_session(sandbox: SandboxServer, http: httpx.Client) -> None:
    click(http, clickId="ck_a", affiliateReference="first")
    click(http, clickId="ck_b", affiliateReference="second")
    http.post(
        API_PATHS["payment"],
        json={"clientId": 1, "leadType": "PAYMENT", "leadValue": 5, "sessionId": "sess_1"},
    )
    assert sandbox.events("payment")[0]["affiliate_reference"] == "second"
    assert http.get(status_path("sess_1"), headers=AUTH).json()["clickId"] == "ck_b"


def test_lead_for_a_session_without_click_is_recorded_unattributed(
    sandbox: SandboxServer, http: httpx.Client
) -> None:
    response = http.post(
        API_PATHS["registration_lead"],
        json={"clientId": 1, "leadType": "REGISTRATION", "sessionId": "organic"},
    )
    assert response.status_code == 201
    assert sandbox.events("registration_lead")[0]["affiliate_reference"] is None


def test_requests_log_keeps_failed_calls(sandbox: SandboxServer, http: httpx.Client) -> None:
    click(http, clientId="nope")
    click(http)
    http.post(API_PATHS["click"], json=CLICK, headers={"Idempotency-Key": "k-1"})
    log = sandbox.requests()
    assert [entry["status"] for entry in log] == [400, 201, 200]
    assert log[2]["idempotency_key"] == "k-1" and log[2]["duplicate"] is True
    assert all(entry["path"] == API_PATHS["click"] for entry in log)


# -- auth ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Authorization": "Bearer wrong"}, id="wrong-key"),
        pytest.param({"Authorization": "test-key"}, id="no-scheme"),
        pytest.param({"Authorization": "Basic dGVzdC1rZXk="}, id="basic"),
        pytest.param({"Authorization": ""}, id="empty"),
    ],
)
def test_wrong_or_malformed_authorization_is_401(
    sandbox: SandboxServer, http: httpx.Client, headers: dict[str, str]
) -> None:
    for response in (
        http.post(API_PATHS["click"], json=CLICK, headers=headers),
        http.get(status_path("s"), headers=headers),
    ):
        assert response.status_code == 401
        assert response.json() == {
            "error": "Unauthorized",
            "message": "Invalid or missing API key",
        }
    assert sandbox.events() == []


def test_status_needs_the_bearer_but_tracking_posts_do_not(http: httpx.Client) -> None:
    assert http.get(status_path("s")).status_code == 401
    assert http.get(status_path("s"), headers=AUTH).status_code == 200
    assert click(http).status_code == 201
    assert http.post(API_PATHS["click"], json={**CLICK, "clickId": "x"}, headers=AUTH).is_success


def test_without_an_api_key_nothing_is_checked() -> None:
    with SandboxServer(port=0) as sb, httpx.Client(base_url=sb.url) as http:
        assert http.get(status_path("s")).status_code == 200
        assert http.get(status_path("s"), headers={"Authorization": "Bearer x"}).is_success


# -- bad input -----------------------------------------------------------------------------

PAY = {"clientId": 1, "leadType": "PAYMENT", "leadValue": 10, "sessionId": "s"}

BAD_BODIES = [
    pytest.param("click", b"not json", 400, "body", id="not-json"),
    pytest.param("click", b"", 400, "body", id="empty-body"),
    pytest.param("click", b"[1, 2]", 400, "body", id="array"),
    pytest.param("click", b'"text"', 400, "body", id="string"),
    pytest.param("click", b"\xff\xfe{}", 400, "body", id="not-utf8"),
    pytest.param("click", b"[" * 50_000 + b"]" * 50_000, 413, "body", id="too-deep-and-big"),
    pytest.param("click", b"[" * 30_000, 400, "body", id="deep-nesting"),
    pytest.param("payment", b'{"leadValue": NaN}', 400, "body", id="nan-literal"),
    pytest.param("click", json.dumps({**CLICK, "clientId": "1"}), 400, "clientId", id="str-int"),
    pytest.param("click", json.dumps({**CLICK, "clientId": True}), 400, "clientId", id="bool"),
    pytest.param("click", json.dumps({**CLICK, "clientId": -4}), 400, "clientId", id="negative"),
    pytest.param("click", '{"clientId": 1' + "0" * 5000 + "}", 400, "body", id="huge-int-literal"),
    pytest.param("click", json.dumps({**CLICK, "clientId": 10**30}), 400, "clientId", id="big"),
    pytest.param(
        "click",
        json.dumps({**CLICK, "affiliateReference": 5}),
        400,
        "affiliateReference",
        id="int-for-str",
    ),
    pytest.param(
        "click", json.dumps({**CLICK, "userAgent": ["x"]}), 400, "userAgent", id="list-for-str"
    ),
    pytest.param(
        "click",
        json.dumps({k: v for k, v in CLICK.items() if k != "sessionId"}),
        400,
        "sessionId",
        id="missing-session",
    ),
    pytest.param("click", json.dumps({**CLICK, "clickId": " "}), 400, "clickId", id="blank"),
    pytest.param(
        "click", json.dumps({**CLICK, "userAgent": "u" * 3000}), 400, "userAgent", id="3k-str"
    ),
    pytest.param(
        "click", json.dumps({**CLICK, "source": "x" * 1_000_000}), 413, "body", id="1mb-string"
    ),
    pytest.param("registration", json.dumps({}), 400, "clickId", id="reg-missing-click"),
    pytest.param(
        "registration", json.dumps({"clickId": "never-seen"}), 404, "clickId", id="unknown-click"
    ),
    pytest.param(
        "registration", json.dumps({"clickId": 999999}), 404, "clickId", id="unknown-int-click"
    ),
    pytest.param("registration", json.dumps({"clickId": 1.5}), 400, "clickId", id="float-click-id"),
    pytest.param(
        "registration_lead",
        json.dumps({"clientId": 1, "sessionId": "s"}),
        400,
        "leadType",
        id="missing-lead-type",
    ),
    pytest.param(
        "payment",
        json.dumps({**PAY, "leadType": "REGISTRATION"}),
        400,
        "leadType",
        id="wrong-lead-type",
    ),
    pytest.param("payment", json.dumps({**PAY, "leadValue": -1}), 400, "leadValue", id="neg"),
    pytest.param("payment", json.dumps({**PAY, "leadValue": "10"}), 400, "leadValue", id="str"),
    pytest.param("payment", json.dumps({**PAY, "leadValue": True}), 400, "leadValue", id="bool$"),
    pytest.param("payment", json.dumps({**PAY, "leadValue": None}), 400, "leadValue", id="null"),
    pytest.param(
        "payment",
        '{"leadValue": 1e400, "clientId": 1, "leadType": "PAYMENT", "sessionId": "s"}',
        400,
        "leadValue",
        id="inf-ish",
    ),
    pytest.param(
        "payment", json.dumps({**PAY, "leadValue": 1e-20}), 400, "leadValue", id="tiny-fraction"
    ),
]


@pytest.mark.parametrize(("kind", "body", "status", "field"), BAD_BODIES)
def test_bad_bodies_get_a_4xx_json_error_naming_the_field(
    sandbox: SandboxServer,
    http: httpx.Client,
    kind: str,
    body: str | bytes,
    status: int,
    field: str,
) -> None:
    click(http, clickId="known")  # so only the body under test is wrong
    before = len(sandbox.events())
    response = http.post(API_PATHS[kind], content=body)
    assert response.status_code == status
    error = response.json()
    assert set(error) >= {"error", "message"} and error["field"] == field
    assert field in error["message"]
    assert len(sandbox.events()) == before
    assert_alive(http)


def test_bad_idempotency_key_and_unknown_paths_and_methods(http: httpx.Client) -> None:
    response = http.post(API_PATHS["click"], json=CLICK, headers={"Idempotency-Key": "k" * 300})
    assert response.status_code == 400 and response.json()["field"] == "Idempotency-Key"
    assert http.post("/api/v1/tracking/nope", json={}).status_code == 404
    assert http.get(API_PATHS["click"]).status_code == 405
    assert http.post(status_path("s"), headers=AUTH).status_code == 405
    assert http.get("/nowhere").json()["error"] == "Not Found"
    assert_alive(http)


def test_chunked_body_over_the_limit_is_413(http: httpx.Client) -> None:
    def chunks() -> Any:
        for _ in range(20):
            yield b"x" * 10_000

    response = http.post(API_PATHS["click"], content=chunks())
    assert response.status_code == 413
    assert_alive(http)


# -- duplicates ----------------------------------------------------------------------------


def test_repeated_idempotency_key_returns_the_original_response(
    sandbox: SandboxServer, http: httpx.Client
) -> None:
    first = http.post(
        API_PATHS["payment"], json={**PAY, "sessionId": "sess_1"}, headers={"Idempotency-Key": "e1"}
    )
    again = http.post(
        API_PATHS["payment"], json={**PAY, "sessionId": "sess_1"}, headers={"Idempotency-Key": "e1"}
    )
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(sandbox.events("payment")) == 1
    assert sandbox.duplicates() == 1
    assert sandbox.events("payment")[0]["idempotency_key"] == "e1"


def test_repeated_click_id_is_a_duplicate(sandbox: SandboxServer, http: httpx.Client) -> None:
    first = click(http)
    again = click(http, affiliateReference="someone-else")
    assert again.status_code == 200 and again.json() == first.json()
    assert len(sandbox.events("click")) == 1 and sandbox.duplicates() == 1


def test_concurrent_duplicates_store_one_row(sandbox: SandboxServer) -> None:
    def send() -> None:
        with httpx.Client(base_url=sandbox.url, timeout=10) as client:
            client.post(API_PATHS["click"], json=CLICK, headers={"Idempotency-Key": "same"})

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(sandbox.events("click")) == 1
    assert sandbox.duplicates() == 7
    assert sorted(entry["status"] for entry in sandbox.requests()) == [200] * 7 + [201]


# -- faults --------------------------------------------------------------------------------


def test_latency_fault_delays_api_calls(sandbox: SandboxServer, http: httpx.Client) -> None:
    sandbox.set_faults(latency=0.3)
    started = time.monotonic()
    assert click(http).status_code == 201
    assert time.monotonic() - started >= 0.3
    sandbox.clear_faults()
    assert click(http, clickId="ck_2").status_code == 201


def test_error_rate_one_fails_every_call_with_the_chosen_status(
    sandbox: SandboxServer, http: httpx.Client
) -> None:
    sandbox.set_faults(error_rate=1.0, error_status=500)
    for _ in range(3):
        response = click(http)
        assert response.status_code == 500 and "error" in response.json()
    assert sandbox.events() == []
    assert http.get("/").status_code == 200  # the dashboard is not an API call
    sandbox.clear_faults()
    assert click(http).status_code == 201


def test_outage_window_answers_503_until_it_ends(
    sandbox: SandboxServer, http: httpx.Client
) -> None:
    sandbox.set_faults(outage_seconds=60, retry_after=2)
    response = click(http)
    assert response.status_code == 503 and response.headers["Retry-After"] == "2"
    assert http.get(status_path("s"), headers=AUTH).status_code == 503
    sandbox.set_faults(outage_seconds=0)
    assert click(http).status_code == 201


def test_rate_limit_gives_the_next_n_calls_429_with_retry_after(
    sandbox: SandboxServer, http: httpx.Client
) -> None:
    sandbox.set_faults(rate_limit=2, retry_after=3)
    statuses = [click(http, clickId=f"c{i}") for i in range(3)]
    assert [r.status_code for r in statuses] == [429, 429, 201]
    assert statuses[0].headers["Retry-After"] == "3"
    assert statuses[0].json()["error"] == "Too Many Requests"
    assert [e["status"] for e in sandbox.requests()] == [429, 429, 201]


def test_fault_values_are_validated(sandbox: SandboxServer) -> None:
    for bad in ({"error_rate": 2}, {"latency": -1}, {"rate_limit": -1}, {"error_status": 404}):
        with pytest.raises(ValueError):
            sandbox.set_faults(**bad)


def test_stop_cuts_injected_latency_short(monkeypatch: pytest.MonkeyPatch) -> None:
    sb = SandboxServer(port=0).start()
    sb.set_faults(latency=60)
    stalled = threading.Event()
    decide = sb.faults.decide

    def decide_and_signal() -> Any:
        result = decide()
        stalled.set()
        return result

    monkeypatch.setattr(sb.faults, "decide", decide_and_signal)
    answers: queue.Queue[object] = queue.Queue()

    def call() -> None:
        try:
            answers.put(httpx.post(sb.url + API_PATHS["click"], json=CLICK, timeout=30))
        except httpx.HTTPError as exc:
            answers.put(exc)

    threading.Thread(target=call, daemon=True).start()
    assert stalled.wait(timeout=10)
    started = time.monotonic()
    sb.close()
    answers.get(timeout=20)
    assert time.monotonic() - started < 20


def test_admin_endpoints_over_http(sandbox: SandboxServer, http: httpx.Client) -> None:
    response = http.post("/_sandbox/faults", json={"rate_limit": 1, "retry_after": 0.5})
    assert response.status_code == 200 and response.json()["rate_limit"] == 1
    limited = click(http)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "0.5"
    assert click(http).status_code == 201
    assert http.post("/_sandbox/faults", json={"error_rate": 7}).status_code == 400
    assert http.post("/_sandbox/faults", json={"bogus": 1}).status_code == 400
    assert http.post("/_sandbox/faults", content=b"nope").status_code == 400
    http.post(API_PATHS["payment"], json={**PAY, "sessionId": "sess_1", "leadValue": 12.5})
    events = http.get("/_sandbox/events", params={"kind": "payment"}).json()["events"]
    assert len(events) == 1 and events[0]["affiliate_reference"] == "abc123"
    assert b'"leadValue":12.5' in http.get("/_sandbox/events").content
    requests = http.get("/_sandbox/requests").json()["requests"]
    assert [r["status"] for r in requests] == [429, 201, 201]
    assert http.get("/_sandbox/stats").json() == {"duplicates": 0, "events": 2, "requests": 3}
    assert http.delete("/_sandbox/faults").json()["rate_limit"] == 0
    assert http.post("/_sandbox/reset").status_code == 200
    assert sandbox.events() == [] and sandbox.requests() == []


# -- dashboard, persistence, CLI -----------------------------------------------------------


def test_dashboard_shows_funnel_per_affiliate_escaped(http: httpx.Client) -> None:
    click(http, affiliateReference="<script>alert(1)</script>")
    http.post(API_PATHS["payment"], json={**PAY, "sessionId": "sess_1", "leadValue": 19.99})
    http.post(API_PATHS["payment"], json={**PAY, "sessionId": "sess_1", "leadValue": 0.01})
    page = http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    row = page.text.split('data-affiliate="&lt;script&gt;alert(1)&lt;/script&gt;"', 1)[1]
    row = row.split("</tr>", 1)[0]
    assert 'data-clicks="1" data-registrations="0" data-payments="2"' in row
    assert '<td class="client">1</td>' in row  # the clientId the click carried
    assert '<span class="count">2</span> payments' in row
    assert '<td class="num click-to-registration">0.0%</td>' in row
    assert '<td class="num registration-to-payment">-</td>' in row  # no registration
    assert '<td class="num revenue">20.00</td>' in row
    assert page.text.count("<td>payment</td>") == 2
    assert '<a href="/_sandbox/events">' in page.text and 'id="reset"' in page.text


def test_dashboard_funnel_bars_and_rates(http: httpx.Client) -> None:
    for i in range(4):
        click(http, clickId=f"ck_{i}", sessionId=f"sess_{i}", affiliateReference="wide")
    for i in range(2):
        assert http.post(API_PATHS["registration"], json={"clickId": f"ck_{i}"}).status_code == 201
    http.post(API_PATHS["payment"], json={**PAY, "sessionId": "sess_0", "leadValue": 10})
    page = http.get("/").text
    row = page.split('data-affiliate="wide"', 1)[1].split("</tr>", 1)[0]
    widths = re.findall(r'class="bar" style="width:([0-9.]+)%"', row)
    assert widths == ["100.0", "50.0", "25.0"]  # a funnel: each step against the clicks
    assert '<td class="num click-to-registration">50.0%</td>' in row
    assert '<td class="num registration-to-payment">50.0%</td>' in row
    assert '<span class="count">1</span> payment<' in row  # singular


def test_file_database_survives_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "affy.sqlite")
    with SandboxServer(port=0, api_key="k", db=db) as sb, httpx.Client(base_url=sb.url) as http:
        assert click(http).status_code == 201
    with SandboxServer(port=0, api_key="k", db=db) as sb, httpx.Client(base_url=sb.url) as http:
        assert [e["kind"] for e in sb.events()] == ["click"]
        status = http.get(status_path("sess_1"), headers={"Authorization": "Bearer k"}).json()
        assert status["affiliateReference"] == "abc123"
        assert click(http).status_code == 200  # still a duplicate after the restart
        assert http.post(API_PATHS["registration"], json={"clickId": "ck_1"}).status_code == 201


@pytest.mark.process
def test_module_runs_as_a_command(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "affy_middleware.sandbox",
            "--port",
            "0",
            "--api-key",
            "cli-key",
            "--db",
            str(tmp_path / "cli.sqlite"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        first = lines.get(timeout=30)
        assert first.startswith("AFFY sandbox listening on http://127.0.0.1:")
        url = first.rsplit(" ", 1)[1].strip()
        with httpx.Client(base_url=url, timeout=10) as http:
            assert click(http).status_code == 201
            status = http.get(status_path("sess_1"), headers={"Authorization": "Bearer cli-key"})
            assert status.json()["hasAffiliate"] is True
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
        if proc.stdout is not None:
            proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()


def test_cli_rejects_a_bad_port() -> None:
    from affy_middleware.sandbox.__main__ import main

    with pytest.raises(SystemExit) as exited:
        main(["--port", "70000"])
    assert exited.value.code == 2


def test_a_stopped_server_can_start_again_with_its_data() -> None:
    sb = SandboxServer(port=0, api_key="k").start()
    try:
        with httpx.Client(base_url=sb.url) as http:
            assert click(http).status_code == 201
        sb.stop()
        sb.start()
        with httpx.Client(base_url=sb.url) as http:
            assert click(http).status_code == 200
        assert len(sb.events()) == 1
    finally:
        sb.close()
    with pytest.raises(RuntimeError):
        _ = sb.url


def test_taken_port_raises_oserror_not_systemexit(sandbox: SandboxServer) -> None:
    with pytest.raises(OSError):
        SandboxServer(port=sandbox.port).start()
    assert httpx.get(sandbox.url + "/").status_code == 200
