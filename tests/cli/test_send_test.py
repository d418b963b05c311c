"""``affy send-test``: test events through the real pipeline, read back from AFFY."""

from __future__ import annotations

from _cli import WRONG_KEY, affy, closed_port, sandbox_env

from affy_middleware.sandbox import SandboxServer


def test_send_test_goes_through_the_pipeline_and_reads_back(sandbox: SandboxServer) -> None:
    run = affy("send-test", "--json", "--amount", "12.5", env=sandbox_env(sandbox))
    assert run.code == 0, run.text
    data = run.json()
    assert data["ok"] is True
    session = data["session_id"]
    assert data["status"]["hasAffiliate"] is True
    assert data["status"]["affiliateReference"] == "affy-send-test"
    assert data["delivery"]["sent"] == 3
    events = sandbox.events()
    assert [e["kind"] for e in events] == ["click", "registration", "payment"]
    assert {e["session_id"] for e in events} == {session}
    assert {e["affiliate_reference"] for e in events} == {"affy-send-test"}
    assert str(events[2]["lead_value"]) == "12.50"
    # Delivered by the dispatcher: every event carried its Idempotency-Key.
    assert all(e["idempotency_key"] for e in events)


def test_send_test_human_output(sandbox: SandboxServer) -> None:
    run = affy(
        "send-test",
        "--affiliate",
        "partner-x",
        "--email",
        "qa@shop.test",
        env=sandbox_env(sandbox),
    )
    assert run.code == 0, run.text
    for word in ("reach", "click", "registration", "delivered", "attribution", "ok"):
        assert word in run.out
    assert "attributes session affy-send-test-" in run.out and "to partner-x" in run.out
    events = sandbox.events()
    assert [e["kind"] for e in events] == ["click", "registration"]
    assert events[1]["body"]["email"] == "qa@shop.test"


def test_send_test_sync_delivery_mode(sandbox: SandboxServer) -> None:
    run = affy("send-test", "--json", env=sandbox_env(sandbox, AFFY_DELIVERY="sync"))
    assert run.code == 0, run.text
    assert run.json()["delivery"]["sent"] == 2


def test_send_test_wrong_key_sends_nothing(sandbox: SandboxServer) -> None:
    run = affy("send-test", env=sandbox_env(sandbox, AFFY_API_KEY=WRONG_KEY))
    assert run.code == 1
    assert "rejected the API key" in run.err
    assert sandbox.events() == []


def test_send_test_without_client_id(sandbox: SandboxServer) -> None:
    env = sandbox_env(sandbox)
    del env["AFFY_CLIENT_ID"]
    run = affy("send-test", env=env)
    assert run.code == 1
    assert "AFFY_CLIENT_ID is not set" in run.err and "fix: export AFFY_CLIENT_ID" in run.err


def test_send_test_unreachable(sandbox: SandboxServer) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    run = affy("send-test", "--json", "--api-url", url, env=sandbox_env(sandbox))
    assert run.code == 1
    assert run.json()["ok"] is False and "could not reach AFFY" in run.json()["problem"]


def test_send_test_events_refused_by_affy(sandbox: SandboxServer) -> None:
    """The status probe passes, but AFFY refuses the events themselves (here: a client id
    beyond what the API accepts): AFFY's reason is reported, nothing is retried."""
    run = affy("send-test", "--client-id", str(2**63), env=sandbox_env(sandbox))
    assert run.code == 1
    assert "0 of 2 test events delivered" in run.err
    assert "(AFFY refused a click event, not retrying: 400" in run.err
    assert "clientId" in run.err and "fix: AFFY refused them" in run.err
    assert sandbox.events() == []


def test_send_test_slow_affy_fails_within_the_wait(sandbox: SandboxServer) -> None:
    """AFFY answers the status probe, then is too slow for the events: a clear failure,
    and the process exits promptly instead of hanging on the queue."""
    sandbox.set_faults(latency=1.5)
    run = affy("send-test", "--wait", "0.5", env=sandbox_env(sandbox), timeout=40)
    assert run.code == 1
    assert "of 2 test events delivered (not delivered within --wait 0.5s)" in run.err
    assert "raise --wait" in run.err


def test_send_test_wait_0_queues_without_waiting_and_delivers_at_exit(
    sandbox: SandboxServer,
) -> None:
    run = affy("send-test", "--json", "--wait", "0", env=sandbox_env(sandbox))
    assert run.code == 0, run.text
    data = run.json()
    assert data["ok"] is True and "status" not in data
    assert [s["step"] for s in data["steps"]][-2:] == ["queued", "attribution"]
    # The process has exited: its bounded flush at exit delivered what it queued.
    events = sandbox.events()
    assert [e["kind"] for e in events] == ["click", "registration"]
    assert {e["session_id"] for e in events} == {data["session_id"]}
