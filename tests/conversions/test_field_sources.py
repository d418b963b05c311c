"""Where the decorators find form fields: a framework's reader lives in its integration
module and is imported the first time it is needed, even when the app never imports it.

Each case runs in a fresh interpreter: in this one the integrations are already imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from typing import Any

import pytest

from affy_middleware import Settings, identify, track_registration
from affy_middleware._wire import Event
from affy_middleware.attribution import Visit, reset_current_visit, set_current_visit
from affy_middleware.conversions import register_field_source
from affy_middleware.delivery import capture

PRELUDE = """
import json, sys
from affy_middleware import Settings
from affy_middleware.delivery import capture
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
SETTINGS = Settings(client_id=1, api_url="http://127.0.0.1:9")
"""

FLASK_APP = """
from flask import Flask
from affy_middleware import AffyMiddleware, track_registration

app = Flask(__name__)

@app.post("/signup")
@track_registration
def signup():
    return "ok"

app.wsgi_app = AffyMiddleware(app.wsgi_app, settings=SETTINGS)
client = app.test_client()
with capture() as events:
    client.get("/?ref=p1", headers={"User-Agent": CHROME})
    client.post("/signup", data={"email": "f@example.com"}, headers={"User-Agent": CHROME})
"""

STARLETTE_APP = """
import sys
sys.modules["fastapi"] = None  # Starlette without FastAPI installed
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from affy_middleware import AffyASGIMiddleware, track_registration

@track_registration
async def signup(request):
    await request.form()
    return PlainTextResponse("ok")

app = AffyASGIMiddleware(Starlette(routes=[Route("/signup", signup, methods=["POST"])]),
                         settings=SETTINGS)
with capture() as events, TestClient(app) as client:
    client.get("/signup?ref=p1", headers={"User-Agent": CHROME})
    client.post("/signup", data={"email": "s@example.com"}, headers={"User-Agent": CHROME})
"""

REPORT = """
print(json.dumps({
    "emails": [e.body.get("email") for e in events if e.kind == "registration"],
    "loaded": sorted(m for m in sys.modules if m in (
        "affy_middleware.flask", "affy_middleware.django", "affy_middleware.fastapi")),
}))
"""


def run(app: str) -> dict[str, Any]:
    code = textwrap.dedent(PRELUDE) + textwrap.dedent(app) + textwrap.dedent(REPORT)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.process
def test_flask_reader_without_importing_the_flask_integration() -> None:
    assert run(FLASK_APP) == {"emails": ["f@example.com"], "loaded": ["affy_middleware.flask"]}


@pytest.mark.process
def test_starlette_reader_without_fastapi() -> None:
    assert run(STARLETTE_APP) == {
        "emails": ["s@example.com"],
        "loaded": ["affy_middleware.fastapi"],
    }


# -- the registry ---------------------------------------------------------------------------

SETTINGS_KW: dict[str, Any] = {"client_id": 1, "api_url": "http://127.0.0.1:9"}


def marked_form(
    args: tuple[Any, ...], kwargs: Mapping[str, Any], visit: Visit | None
) -> Mapping[str, Any] | None:
    # Answers only for the views below, so registering it for the session harms no test.
    form = kwargs.get("affy_test_form")
    return form if isinstance(form, Mapping) else None


register_field_source(marked_form)
register_field_source(marked_form)  # registering twice is harmless


@track_registration(methods=None)
def signup(**kwargs: Any) -> str:
    return "ok"


@track_registration(methods=None)
def signup_with_identify(**kwargs: Any) -> str:
    identify(email="said@example.com")
    return "ok"


def report(view: Any, **kwargs: Any) -> list[Event]:
    visit = Visit("c" * 32, "s" * 32, method="POST", settings=Settings(**SETTINGS_KW))
    token = set_current_visit(visit)
    try:
        with capture() as events:
            view(**kwargs)
    finally:
        reset_current_visit(token)
    return events


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        pytest.param(
            {"email": "a@example.com", "full_name": "Ann", "user_id": 7},
            {"email": "a@example.com", "customerName": "Ann", "customerId": "7"},
            id="usual-names",
        ),
        pytest.param(
            {"emailAddress": "b@example.com", "first_name": "Bo", "last_name": "Li"},
            {"email": "b@example.com", "customerName": "Bo Li"},
            id="first-and-last-name",
        ),
        pytest.param({"email": "not-an-email"}, {}, id="implausible-email"),
    ],
)
def test_a_registered_source_fills_the_customer(
    form: dict[str, Any], expected: dict[str, str]
) -> None:
    (event,) = report(signup, affy_test_form=form)
    assert event.body == {"clickId": "c" * 32, **expected}


def test_identify_wins_over_every_source() -> None:
    (event,) = report(signup_with_identify, affy_test_form={"email": "form@example.com"})
    assert event.body["email"] == "said@example.com"
