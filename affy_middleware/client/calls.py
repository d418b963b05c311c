"""What both API clients share: settings, headers, the calls prepared, answers mapped."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from .._errors import AffyAPIError, AffyConfigError, AffyNetworkError, AffyTimeoutError
from .._settings import Settings
from .._wire import (
    API_PATHS,
    Event,
    click_body,
    encode_body,
    lead_value,
    payment_body,
    registration_body,
    registration_lead_body,
)
from .bounded import IDENTITY
from .responses import error_for_response, redact, response_body
from .results import ClickResult, LeadResult, PaymentResult, RegistrationResult, StatusResult

__all__ = ["ClientBase", "Call", "USER_AGENT"]

#: Sent as ``User-Agent`` so AFFY can tell server-side tracking apart.
USER_AGENT = "affy-middleware-python"

T = TypeVar("T")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One prepared API call: built and validated before any network activity."""

    method: str
    path: str
    content: bytes | None
    idempotency_key: str | None
    parse: Callable[[dict[str, Any]], T]


def _check_key(idempotency_key: str | None) -> str | None:
    if idempotency_key is not None and (
        not isinstance(idempotency_key, str)
        or not 0 < len(idempotency_key) <= 255
        or not idempotency_key.isascii()
        or not idempotency_key.isprintable()
    ):
        raise ValueError("idempotency_key must be 1 to 255 printable ASCII characters")
    return idempotency_key


class ClientBase:
    """Settings, headers and the calls' wire format, shared by both clients."""

    def __init__(
        self,
        settings: Settings | None,
        *,
        api_url: str | None,
        api_key: str | None,
        client_id: int | None,
        timeout: float | None,
    ) -> None:
        overrides: dict[str, Any] = {
            name: value
            for name, value in (
                ("api_url", api_url),
                ("api_key", api_key),
                ("client_id", client_id),
                ("timeout", timeout),
            )
            if value is not None
        }
        if settings is None:
            settings = Settings.from_env(**overrides)
        elif overrides:
            settings = settings.replace(**overrides)
        self.settings = settings
        self._secret = settings.api_key
        self._headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **IDENTITY}
        if settings.api_key:
            self._headers["Authorization"] = f"Bearer {settings.api_key}"
        self._timeout = httpx.Timeout(settings.timeout)

    def __repr__(self) -> str:
        key = "'***'" if self._secret else "None"
        return (
            f"<{type(self).__name__} api_url={self.settings.api_url!r} "
            f"client_id={self.settings.client_id!r} api_key={key}>"
        )

    def _client_id(self) -> int:
        if self.settings.client_id is None:
            raise AffyConfigError(
                "AFFY_CLIENT_ID (client_id) is not set: this call needs your numeric client id"
            )
        return self.settings.client_id

    # -- the calls, prepared ------------------------------------------------------------

    def _post(
        self, kind: str, body: dict[str, Any], key: str | None, parse: Callable[[dict[str, Any]], T]
    ) -> Call[T]:
        return Call("POST", API_PATHS[kind], encode_body(body), _check_key(key), parse)

    def _click(self, key: str | None, **fields: Any) -> Call[ClickResult]:
        return self._post(
            "click", click_body(self._client_id(), **fields), key, ClickResult.from_json
        )

    def _registration(self, key: str | None, **fields: Any) -> Call[RegistrationResult]:
        return self._post(
            "registration", registration_body(**fields), key, RegistrationResult.from_json
        )

    def _registration_lead(self, key: str | None, **fields: Any) -> Call[LeadResult]:
        body = registration_lead_body(self._client_id(), **fields)
        return self._post("registration_lead", body, key, LeadResult.from_json)

    def _payment(self, key: str | None, value: object, **fields: Any) -> Call[PaymentResult]:
        body = payment_body(self._client_id(), lead_value=lead_value(value), **fields)
        return self._post("payment", body, key, PaymentResult.from_json)

    def _status(self, session_id: str) -> Call[StatusResult]:
        if not isinstance(session_id, str) or not session_id.strip():
            raise ValueError(f"session_id must be a non-empty string, got {session_id!r}")
        path = API_PATHS["status"].format(session_id=quote(session_id, safe=""))
        return Call("GET", path, None, None, StatusResult.from_json)

    def _event(self, event: Event) -> Call[dict[str, Any]]:
        return Call("POST", event.path, event.encoded(), event.event_id, _identity)

    # -- the answers --------------------------------------------------------------------

    def _headers_for(self, call: Call[Any]) -> dict[str, str]:
        headers: dict[str, str] = {}
        if call.content is not None:
            headers["Content-Type"] = "application/json"
        if call.idempotency_key is not None:
            headers["Idempotency-Key"] = call.idempotency_key
        return headers

    def _result(self, call: Call[T], response: httpx.Response) -> T:
        if not response.is_success:
            raise error_for_response(response, secret=self._secret)
        return call.parse(response_body(response))

    def _network_error(self, exc: httpx.HTTPError) -> AffyAPIError:
        where = self.settings.api_url
        detail = redact(str(exc) or type(exc).__name__, self._secret)
        if isinstance(exc, httpx.TimeoutException):
            return AffyTimeoutError(
                f"AFFY at {where} did not answer within {self.settings.timeout:g}s "
                f"({type(exc).__name__})"
            )
        return AffyNetworkError(f"could not reach AFFY at {where}: {detail}")


def _identity(data: dict[str, Any]) -> dict[str, Any]:
    return data
