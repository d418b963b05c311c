"""``AffyClient``: the AFFY Tracking API over one keep-alive ``httpx.Client``."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, TypeVar

import httpx

from .._settings import Settings
from .._wire import Event
from .bounded import BodyReader, Remaining
from .calls import Call, ClientBase
from .results import ClickResult, LeadResult, PaymentResult, RegistrationResult, StatusResult

__all__ = ["AffyClient"]

T = TypeVar("T")


class AffyClient(ClientBase):
    """The AFFY Tracking API, one method per call, over one keep-alive ``httpx.Client``.

    ``settings`` defaults to :meth:`Settings.from_env`; the keyword arguments override it.
    Use it as a context manager, or call :meth:`close`::

        with AffyClient(client_id=42, api_key="sk_...") as affy:
            affy.click(affiliate_reference="abc123", click_id=cid, session_id=sid)
            print(affy.status(sid).affiliate_reference)
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        api_url: str | None = None,
        api_key: str | None = None,
        client_id: int | None = None,
        timeout: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            settings, api_url=api_url, api_key=api_key, client_id=client_id, timeout=timeout
        )
        self._http = httpx.Client(
            base_url=self.settings.api_url,
            headers=self._headers,
            timeout=self._timeout,
            transport=transport,
            follow_redirects=False,
        )

    def _send(self, call: Call[T]) -> T:
        # AFFY_TIMEOUT bounds the whole call: each network step may take only what is
        # left of it (``Remaining``), and the body is read in chunks with the deadline
        # (and the size cap) checked between them.
        deadline = time.monotonic() + self.settings.timeout
        request = self._http.build_request(
            call.method, call.path, content=call.content, headers=self._headers_for(call)
        )
        request.extensions["timeout"] = Remaining(deadline)
        try:
            streamed = self._http.send(request, stream=True)
            try:
                response = BodyReader(streamed, deadline, self.settings.api_url).read(
                    streamed.iter_bytes()
                )
            finally:
                streamed.close()
        except httpx.HTTPError as exc:
            raise self._network_error(exc) from exc
        return self._result(call, response)

    def click(
        self,
        *,
        affiliate_reference: str,
        click_id: str,
        session_id: str,
        clicked_url: str | None = None,
        referrer_url: str | None = None,
        user_agent: str | None = None,
        source: str | None = None,
        idempotency_key: str | None = None,
    ) -> ClickResult:
        """Report a click from an affiliate link; ``click_id`` is our id for it."""
        return self._send(
            self._click(
                idempotency_key,
                affiliate_reference=affiliate_reference,
                click_id=click_id,
                session_id=session_id,
                clicked_url=clicked_url,
                referrer_url=referrer_url,
                user_agent=user_agent,
                source=source,
            )
        )

    def registration(
        self,
        *,
        click_id: str,
        email: str | None = None,
        customer_id: str | int | None = None,
        customer_name: str | None = None,
        idempotency_key: str | None = None,
    ) -> RegistrationResult:
        """Report a signup by the click id from the ``affy_click_id`` cookie."""
        return self._send(
            self._registration(
                idempotency_key,
                click_id=click_id,
                email=email,
                customer_id=None if customer_id is None else str(customer_id),
                customer_name=customer_name,
            )
        )

    def registration_lead(
        self,
        *,
        session_id: str,
        customer_email: str | None = None,
        customer_name: str | None = None,
        idempotency_key: str | None = None,
    ) -> LeadResult:
        """Report a signup by session id (``leadType: REGISTRATION``)."""
        return self._send(
            self._registration_lead(
                idempotency_key,
                session_id=session_id,
                customer_email=customer_email,
                customer_name=customer_name,
            )
        )

    def payment_lead(
        self,
        *,
        session_id: str,
        lead_value: object,
        customer_email: str | None = None,
        idempotency_key: str | None = None,
    ) -> PaymentResult:
        """Report a payment; ``lead_value`` (int, float, Decimal or numeric str, >= 0) is
        sent as a JSON number with its cents (``99.00``)."""
        return self._send(
            self._payment(
                idempotency_key, lead_value, session_id=session_id, customer_email=customer_email
            )
        )

    def status(self, session_id: str) -> StatusResult:
        """Whether AFFY attributes ``session_id`` to an affiliate (needs the API key)."""
        return self._send(self._status(session_id))

    def send_event(self, event: Event) -> dict[str, Any]:
        """POST a queued event as is, with ``Idempotency-Key: event.event_id``; AFFY's
        JSON answer. For the delivery worker."""
        return self._send(self._event(event))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AffyClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
