"""``AffyClient`` and ``AsyncAffyClient``: the typed AFFY Tracking API client.

::

    with AffyClient(client_id=42, api_key="sk_...") as affy:
        click = affy.click(affiliate_reference="abc123", click_id=cid, session_id=sid)
        affy.payment_lead(session_id=sid, lead_value="99.00", customer_email="a@b.c")
        print(affy.status(sid).affiliate_reference)

Arguments are snake_case; the wire is camelCase (the body builders of ``_wire``). Every
call has a timeout; every failure is an :class:`AffyAPIError` subclass; invalid arguments
raise ``ValueError`` before anything is sent. The API key never shows in a repr or an error.

The modules: ``calls`` prepares each call and maps its answer (shared by both clients),
``responses`` turns an HTTP answer into a dict or an exception, ``results`` holds the typed
answers, ``sync`` and ``aio`` send the prepared calls over httpx.
"""

from .aio import AsyncAffyClient
from .results import ClickResult, LeadResult, PaymentResult, RegistrationResult, StatusResult
from .sync import AffyClient

__all__ = [
    "AffyClient",
    "AsyncAffyClient",
    "ClickResult",
    "RegistrationResult",
    "LeadResult",
    "PaymentResult",
    "StatusResult",
]
