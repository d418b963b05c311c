"""AsyncAffyClient: the same calls and failures, awaited."""

from __future__ import annotations

import pytest
from _client_api import SECRET, closed_port_url

from affy_middleware import (
    AffyAuthError,
    AffyNetworkError,
    AffyNotFoundError,
    AffyRateLimitError,
    AffyServerError,
    AffyTimeoutError,
    AffyValidationError,
    AsyncAffyClient,
)
from affy_middleware._wire import Event, click_body
from affy_middleware.sandbox import SandboxServer


@pytest.mark.anyio
async def test_async_every_call(sandbox: SandboxServer) -> None:
    async with AsyncAffyClient(sandbox.settings()) as affy:
        click = await affy.click(affiliate_reference="abc", click_id="ck", session_id="se")
        assert isinstance(click.click_id, int)
        reg = await affy.registration(click_id="ck", email="a@b.c")
        assert reg.click_id == click.click_id
        lead = await affy.registration_lead(session_id="se", customer_name="A")
        assert lead.success
        pay = await affy.payment_lead(session_id="se", lead_value="10.5")
        assert str(pay.lead_value) == "10.50"
        status = await affy.status("se")
        assert status.affiliate_reference == "abc" and status.click_id == "ck"
        event = Event(
            "click", click_body(1, affiliate_reference="x", click_id="c2", session_id="s")
        )
        assert (await affy.send_event(event))["success"] is True
        assert SECRET not in repr(affy)
    kinds = [e["kind"] for e in sandbox.events()]
    assert kinds == ["click", "registration", "registration_lead", "payment", "click"]
    assert sandbox.events()[-1]["idempotency_key"] == event.event_id


@pytest.mark.anyio
async def test_async_errors(sandbox: SandboxServer) -> None:
    async with AsyncAffyClient(sandbox.settings(timeout=0.3)) as affy:
        with pytest.raises(AffyNotFoundError):
            await affy.registration(click_id="unknown")
        with pytest.raises(AffyValidationError):
            await affy.send_event(Event("payment", {"leadValue": "x"}))
        sandbox.set_faults(rate_limit=1, retry_after=2)
        with pytest.raises(AffyRateLimitError) as info:
            await affy.status("s")
        assert info.value.retry_after == 2.0
        sandbox.set_faults(error_rate=1.0)
        with pytest.raises(AffyServerError):
            await affy.status("s")
        sandbox.set_faults(latency=5)
        with pytest.raises(AffyTimeoutError):
            await affy.status("s")
        sandbox.clear_faults()
        with pytest.raises(ValueError):
            await affy.payment_lead(session_id="s", lead_value=-2)
    async with AsyncAffyClient(sandbox.settings(api_key="nope")) as affy:
        with pytest.raises(AffyAuthError):
            await affy.status("s")
    async with AsyncAffyClient(sandbox.settings(api_url=closed_port_url())) as affy:
        with pytest.raises(AffyNetworkError):
            await affy.status("s")
