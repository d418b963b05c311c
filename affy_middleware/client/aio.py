"""``AsyncAffyClient``: the asyncio twin of ``AffyClient`` (same calls, awaited)."""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Any, TypeVar

import httpx

from .._settings import Settings
from .._wire import Event
from .bounded import BodyReader
from .calls import Call, ClientBase
from .results import ClickResult, LeadResult, PaymentResult, RegistrationResult, StatusResult

__all__ = ["AsyncAffyClient"]

T = TypeVar("T")


class AsyncAffyClient(ClientBase):
    """The asyncio twin of :class:`AffyClient`: the same calls, awaited, over one
    keep-alive ``httpx.AsyncClient``.

    ``settings`` defaults to :meth:`Settings.from_env`; the keyword arguments override it.
    Use it as an async context manager, or await :meth:`aclose`.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        api_url: str | None = None,
        api_key: str | None = None,
        client_id: int | None = None,
        timeout: float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            settings, api_url=api_url, api_key=api_key, client_id=client_id, timeout=timeout
        )
        self._http = httpx.AsyncClient(
            base_url=self.settings.api_url,
            headers=self._headers,
            timeout=self._timeout,
            transport=transport,
            follow_redirects=False,
        )

    async def _send(self, call: Call[T]) -> T:
        # AFFY_TIMEOUT bounds the whole call, the body's trickle included (wait_for),
        # and the answer read is capped in size.
        timeout = self.settings.timeout
        try:
            response = await asyncio.wait_for(self._request(call, timeout), timeout)
        except asyncio.TimeoutError as exc:
            raise self._network_error(httpx.TimeoutException(str(exc))) from exc
        except httpx.HTTPError as exc:
            raise self._network_error(exc) from exc
        return self._result(call, response)

    async def _request(self, call: Call[Any], timeout: float) -> httpx.Response:
        deadline = time.monotonic() + timeout
        async with self._http.stream(
            call.method,
            call.path,
            content=call.content,
            headers=self._headers_for(call),
            timeout=httpx.Timeout(timeout),
        ) as streamed:
            return await BodyReader(streamed, deadline, self.settings.api_url).aread(
                streamed.aiter_bytes()
            )

    async def click(
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
        return await self._send(
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

    async def registration(
        self,
        *,
        click_id: str,
        email: str | None = None,
        customer_id: str | int | None = None,
        customer_name: str | None = None,
        idempotency_key: str | None = None,
    ) -> RegistrationResult:
        """Report a signup by the click id from the ``affy_click_id`` cookie."""
        return await self._send(
            self._registration(
                idempotency_key,
                click_id=click_id,
                email=email,
                customer_id=None if customer_id is None else str(customer_id),
                customer_name=customer_name,
            )
        )

    async def registration_lead(
        self,
        *,
        session_id: str,
        customer_email: str | None = None,
        customer_name: str | None = None,
        idempotency_key: str | None = None,
    ) -> LeadResult:
        """Report a signup by session id (``leadType: REGISTRATION``)."""
        return await self._send(
            self._registration_lead(
                idempotency_key,
                session_id=session_id,
                customer_email=customer_email,
                customer_name=customer_name,
            )
        )

    async def payment_lead(
        self,
        *,
        session_id: str,
        lead_value: object,
        customer_email: str | None = None,
        idempotency_key: str | None = None,
    ) -> PaymentResult:
        """Report a payment; ``lead_value`` (int, float, Decimal or numeric str, >= 0) is
        sent as a JSON number with its cents (``99.00``)."""
        return await self._send(
            self._payment(
                idempotency_key, lead_value, session_id=session_id, customer_email=customer_email
            )
        )

    async def status(self, session_id: str) -> StatusResult:
        """Whether AFFY attributes ``session_id`` to an affiliate (needs the API key)."""
        return await self._send(self._status(session_id))

    async def send_event(self, event: Event) -> dict[str, Any]:
        """POST a queued event as is, with ``Idempotency-Key: event.event_id``; AFFY's
        JSON answer. For the delivery worker."""
        return await self._send(self._event(event))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncAffyClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
