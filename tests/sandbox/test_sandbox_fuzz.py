"""Random bodies never make the sandbox fail: every answer is 2xx or a 4xx JSON error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from affy_middleware._wire import API_PATHS
from affy_middleware.sandbox import SandboxServer

FIELDS = [
    "clientId",
    "affiliateReference",
    "clickId",
    "sessionId",
    "clickedUrl",
    "email",
    "customerId",
    "customerName",
    "leadType",
    "customerEmail",
    "leadValue",
    "source",
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["REGISTRATION", "PAYMENT", "ck", "s", 1])
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3), max_leaves=5)
BODIES = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), VALUES, max_size=8)


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[SandboxServer, httpx.Client]]:
    with (
        SandboxServer(port=0, api_key="test-key") as sb,
        httpx.Client(base_url=sb.url, timeout=10) as http,
    ):
        http.post(
            API_PATHS["click"],
            json={"clientId": 1, "affiliateReference": "a", "clickId": "ck", "sessionId": "s"},
        )
        yield sb, http


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(["click", "registration", "registration_lead", "payment"]),
    body=BODIES | st.lists(SCALARS, max_size=3) | SCALARS,
)
def test_random_bodies_get_2xx_or_a_4xx_json_error(
    shared: tuple[SandboxServer, httpx.Client], kind: str, body: Any
) -> None:
    _, http = shared
    response = http.post(API_PATHS[kind], content=json.dumps(body))
    assert response.status_code in (200, 201, 400, 404)
    answer = response.json()
    if response.status_code >= 400:
        assert set(answer) >= {"error", "message", "field"}
    else:
        assert answer["success"] is True
