"""@track_registration, @track_payment, identify, set_lead_value, report_*."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from affy_middleware import (
    AffyMiddleware,
    Settings,
    _defaults,
    delivery,
    identify,
    report_payment,
    report_registration,
    set_lead_value,
    track_payment,
    track_registration,
)
from affy_middleware._wire import Event
from affy_middleware.attribution import Visit, reset_current_visit, set_current_visit
from affy_middleware.conversions import response_status

SETTINGS = Settings(client_id=5, api_url="http://127.0.0.1:9")
CLICK = "click-id-0001"
SESSION = "session-id-0001"
CHROME = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"


@contextlib.contextmanager
def request(
    click_id: str | None = CLICK,
    session_id: str | None = SESSION,
    method: str = "POST",
    settings: Settings = SETTINGS,
    native: Any = None,
) -> Iterator[Visit]:
    visit = Visit(click_id, session_id, method=method, settings=settings, native=native)
    token = set_current_visit(visit)
    try:
        yield visit
    finally:
        reset_current_visit(token)


@pytest.fixture
def events() -> Iterator[list[Event]]:
    with delivery.capture() as captured:
        yield captured


@pytest.fixture(autouse=True)
def fresh_log_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("affy_middleware._logging.log_failure.last", 0.0)


# -- registration --------------------------------------------------------------------------


def test_registration_by_click_id_with_identify(events: list[Event]) -> None:
    @track_registration
    def signup() -> str:
        identify(email="ann@example.com", customer_id=42, name="Ann Lee")
        return "welcome"

    with request():
        assert signup() == "welcome"
    assert [(e.kind, e.body, e.order_key) for e in events] == [
        (
            "registration",
            {
                "clickId": CLICK,
                "email": "ann@example.com",
                "customerId": "42",
                "customerName": "Ann Lee",
            },
            SESSION,
        )
    ]


def test_registration_by_session_without_click(events: list[Event]) -> None:
    @track_registration()
    def signup() -> None:
        identify(email="bo@example.com")

    with request(click_id=None):
        signup()
    assert [(e.kind, e.body) for e in events] == [
        (
            "registration_lead",
            {
                "clientId": 5,
                "leadType": "REGISTRATION",
                "customerEmail": "bo@example.com",
                "sessionId": SESSION,
            },
        )
    ]


def test_not_referred_sends_nothing(events: list[Event]) -> None:
    @track_registration
    def signup() -> str:
        identify(email="x@example.com")
        return "ok"

    assert signup() == "ok"  # no middleware, no visit
    with request(click_id=None, session_id=None):
        assert signup() == "ok"
    assert events == []


def test_view_that_raises_still_raises_and_sends_nothing(events: list[Event]) -> None:
    error = LookupError("db down")

    @track_registration
    def signup() -> None:
        identify(email="ann@example.com")
        raise error

    with request(), pytest.raises(LookupError) as caught:
        signup()
    assert caught.value is error and events == []


@pytest.mark.parametrize(
    ("result", "sent"),
    [
        pytest.param(None, True, id="none"),
        pytest.param("ok", True, id="str"),
        pytest.param({"id": 1}, True, id="dict"),
        pytest.param(("created", 201), True, id="tuple-201"),
        pytest.param(("moved", 302, {"Location": "/"}), True, id="tuple-302-headers"),
        pytest.param(("body", {"X-A": "1"}), True, id="tuple-headers-only"),
        pytest.param(("bad", 400), False, id="tuple-400"),
        pytest.param(("gone", "404 NOT FOUND"), False, id="tuple-str-status"),
        pytest.param(Response("x", 200), True, id="werkzeug-200"),
        pytest.param(Response("x", 422), False, id="werkzeug-422"),
        pytest.param(Response("x", 500), False, id="werkzeug-500"),
        pytest.param((Response("x", 409),), False, id="tuple-of-response"),
    ],
)
def test_status_rule(result: Any, sent: bool, events: list[Event]) -> None:
    @track_registration
    def signup() -> Any:
        return result

    with request():
        assert signup() is result
    assert len(events) == (1 if sent else 0)


def test_response_status_of_framework_objects() -> None:
    class DjangoLike:
        status_code = 403

    class StatusOnly:
        status = "201 CREATED"

    assert response_status(DjangoLike()) == 403
    assert response_status(StatusOnly()) == 201
    assert response_status(True) is None
    assert response_status(("x", True)) is None


def test_get_renders_the_form_without_reporting(events: list[Event]) -> None:
    @track_registration
    def signup() -> str:
        return "form"

    @track_registration(methods=None)
    def magic_link() -> str:
        return "verified"

    with request(method="GET"):
        signup()
        magic_link()
    assert [e.kind for e in events] == ["registration"]
    with pytest.raises(ValueError, match="methods"):
        track_registration(methods=["P O S T"])


# -- async -----------------------------------------------------------------------------------


def test_async_views(events: list[Event]) -> None:
    @track_registration
    async def signup() -> tuple[str, int]:
        await asyncio.sleep(0)
        identify(email="async@example.com")
        return "ok", 201

    @track_payment(value=10)
    async def pay() -> None:
        raise PermissionError("declined")

    assert inspect.iscoroutinefunction(signup) and inspect.iscoroutinefunction(pay)
    assert signup.__name__ == "signup"

    async def main() -> None:
        assert await signup() == ("ok", 201)
        with pytest.raises(PermissionError):
            await pay()

    with request():
        asyncio.run(main())
    assert [(e.kind, e.body.get("email")) for e in events] == [
        ("registration", "async@example.com")
    ]


# -- payment ------------------------------------------------------------------------------


def test_payment_with_set_lead_value(events: list[Event]) -> None:
    @track_payment
    def checkout() -> str:
        identify(email="ann@example.com")
        set_lead_value("49.9")
        return "paid"

    with request():
        checkout()
    assert [(e.kind, e.body, e.order_key) for e in events] == [
        (
            "payment",
            {
                "clientId": 5,
                "leadType": "PAYMENT",
                "customerEmail": "ann@example.com",
                "leadValue": Decimal("49.90"),
                "sessionId": SESSION,
            },
            SESSION,
        )
    ]


def test_payment_value_argument_and_callable(events: list[Event]) -> None:
    @track_payment(value=99)
    def fixed() -> None:
        pass

    @track_payment(value=lambda result: result["total"])
    def computed() -> dict[str, str]:
        return {"total": "12.5"}

    @track_payment(value=5)
    def overridden() -> None:
        set_lead_value(Decimal("7"))

    with request():
        fixed()
        computed()
        overridden()
    assert [e.body["leadValue"] for e in events] == [
        Decimal("99.00"),
        Decimal("12.50"),
        Decimal("7.00"),
    ]


def test_payment_needs_a_session_and_an_amount(
    events: list[Event], caplog: pytest.LogCaptureFixture
) -> None:
    @track_payment
    def checkout() -> str:
        return "paid"

    with request(session_id=None):
        set_lead_value(5)
        checkout()
    with caplog.at_level(logging.WARNING, logger="affy_middleware"), request():
        assert checkout() == "paid"
    assert events == [] and "without an amount" in caplog.text


@pytest.mark.parametrize("bad", ["abc", -1, float("nan"), float("inf"), True, None, [1]])
def test_bad_amounts_are_programming_errors(bad: Any) -> None:
    with pytest.raises(ValueError):
        set_lead_value(bad)
    with pytest.raises(ValueError):
        track_payment(value=bad) if bad is not None else report_payment(bad)
    with pytest.raises(ValueError):
        report_payment(bad, session_id=SESSION)


@pytest.mark.parametrize(
    "kwargs",
    [{"email": 5.0}, {"name": ["a"]}, {"customer_id": object()}, {"email": b"x@y"}],
)
def test_identify_rejects_wrong_types(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        identify(**kwargs)
    with pytest.raises(ValueError):
        report_registration(**kwargs)


# -- explicit reports ------------------------------------------------------------------------


def test_report_outside_a_request_uses_default_settings(
    events: list[Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_defaults, "default_settings", lambda: SETTINGS)
    assert report_registration(email="hook@example.com", click_id=CLICK) is True
    assert report_registration(name="Lead", session_id=SESSION) is True
    assert report_payment("19.99", email="hook@example.com", session_id=SESSION) is True
    assert report_registration(email="nobody@example.com") is False  # no ids at all
    assert report_payment(1) is False
    assert [e.kind for e in events] == ["registration", "registration_lead", "payment"]
    assert events[2].body["leadValue"] == Decimal("19.99")


def test_report_in_a_request_uses_the_visit(events: list[Event]) -> None:
    with request() as visit:
        identify(email="ann@example.com")
        assert report_registration(customer_id="u1") is True
        assert report_payment(3) is True
        assert visit.email == "ann@example.com"
    assert events[0].body == {"clickId": CLICK, "email": "ann@example.com", "customerId": "u1"}
    assert events[1].body["sessionId"] == SESSION


@pytest.mark.parametrize("bad", ["", "short", "has space!", "x" * 200, 12345678])
def test_report_rejects_malformed_ids(bad: Any) -> None:
    with pytest.raises(ValueError, match="id"):
        report_registration(click_id=bad)
    with pytest.raises(ValueError, match="session_id"):
        report_payment(1, session_id=bad)


def test_inactive_settings_report_nothing(
    events: list[Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_defaults, "default_settings", lambda: Settings(client_id=None))
    assert report_registration(click_id=CLICK) is False
    assert report_payment(1, session_id=SESSION) is False

    @track_registration
    def signup() -> None:
        pass

    with request(settings=Settings(client_id=None)):
        signup()
    assert events == []


# -- customer fields from the framework ---------------------------------------------------------


def test_extractor_and_its_bugs(events: list[Event], caplog: pytest.LogCaptureFixture) -> None:
    @track_registration(customer=lambda user: {"email": user["mail"], "customer_id": user["id"]})
    def api_signup() -> dict[str, Any]:
        return {"mail": "api@example.com", "id": 9}

    @track_registration(customer=lambda user: user["missing"])
    def buggy() -> dict[str, Any]:
        return {"ok": True}

    with request():
        api_signup()
        with caplog.at_level(logging.ERROR, logger="affy_middleware"):
            assert buggy() == {"ok": True}
    assert events[0].body == {"clickId": CLICK, "email": "api@example.com", "customerId": "9"}
    # The extractor's bug is logged; the registration still goes, without its fields.
    assert events[1].body == {"clickId": CLICK}
    assert "customer= extractor failed" in caplog.text and "'missing'" in caplog.text
    with pytest.raises(TypeError):
        track_registration(customer="email")  # type: ignore[call-overload]


def test_enqueue_failure_is_logged_and_view_result_returned(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def down(settings: Settings) -> Any:
        raise ConnectionError("AFFY down")

    monkeypatch.setattr(delivery, "backend_for", down)

    @track_payment(value=1)
    def checkout() -> tuple[str, int]:
        return "paid", 200

    with caplog.at_level(logging.ERROR, logger="affy_middleware"), request():
        assert checkout() == ("paid", 200)
    assert "AFFY down" in caplog.text


def test_werkzeug_form_is_read_only_when_already_parsed(events: list[Event]) -> None:
    """Plain WSGI under the middleware: the decorator never reads an unread body."""
    seen: list[bytes] = []

    def make_app(parse: bool) -> Any:
        @track_registration
        def signup(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            req = Request(environ)
            if parse:
                assert req.form["email"] == "form@example.com"
            else:
                seen.append(environ["wsgi.input"].read())  # the app reads the raw body itself
            start_response("200 OK", [])
            return [b"ok"]

        return AffyMiddleware(signup, settings=SETTINGS)

    for parse in (True, False):
        env = EnvironBuilder(
            method="POST",
            data={"email": "form@example.com", "name": "Form Name"},
            headers={"User-Agent": CHROME, "Cookie": f"affy_click_id={CLICK}"},
        ).get_environ()
        body = b"".join(make_app(parse)(env, lambda s, h, e=None: None))
        assert body == b"ok"
    assert seen == [b"email=form@example.com&name=Form+Name"]
    assert [e.body.get("email") for e in events] == ["form@example.com", None]
    assert events[0].body["customerName"] == "Form Name"


def test_unreadable_form_still_reports(events: list[Event]) -> None:
    class StreamedRequest:  # Django raises like this when the view streamed the body
        META: dict[str, str] = {}

        @property
        def POST(self) -> Any:
            raise RuntimeError("You cannot access body after reading from request's data stream")

    @track_registration
    def signup(req: Any) -> str:
        identify(customer_id="c-1")
        return "ok"

    with request():
        assert signup(StreamedRequest()) == "ok"
    assert [e.body for e in events] == [{"clickId": CLICK, "customerId": "c-1"}]


def test_django_request_fields(events: list[Event]) -> None:
    django_settings = pytest.importorskip("django.conf").settings
    if not django_settings.configured:
        django_settings.configure(DEBUG=False, ALLOWED_HOSTS=["*"], USE_TZ=True)
    import django

    django.setup()
    from django.http import HttpResponse
    from django.test import RequestFactory

    @track_registration
    def signup(req: Any) -> HttpResponse:
        return HttpResponse("ok", status=201)

    @track_registration
    def rejected(req: Any) -> HttpResponse:
        return HttpResponse("no", status=400)

    django_request = RequestFactory().post(
        "/signup", {"email": "dj@example.com", "first_name": "Dj", "last_name": "Ango"}
    )
    with request():
        signup(django_request)
        rejected(django_request)
    assert [e.body for e in events] == [
        {"clickId": CLICK, "email": "dj@example.com", "customerName": "Dj Ango"}
    ]


def test_wsgi_input_untouched_before_the_view(events: list[Event]) -> None:
    # The middleware and decorator never touch wsgi.input before the view.
    class Guard(io.BytesIO):
        reads = 0

        def read(self, *args: Any) -> bytes:
            Guard.reads += 1
            return super().read(*args)

    @track_registration
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        assert Guard.reads == 0
        start_response("204 No Content", [])
        return []

    env = EnvironBuilder(method="POST", headers={"User-Agent": CHROME}).get_environ()
    env["wsgi.input"] = Guard(b"email=a%40b.c")
    env["HTTP_COOKIE"] = f"affy_session_id={SESSION}"
    AffyMiddleware(app, settings=SETTINGS)(env, lambda s, h, e=None: None)
    assert Guard.reads == 0 and [e.kind for e in events] == ["registration_lead"]


def test_identify_wins_over_form_fields(events: list[Event]) -> None:
    import flask

    app = flask.Flask(__name__)

    @track_registration
    def signup() -> str:
        identify(email="identified@example.com")
        return "ok"

    with (
        app.test_request_context(
            "/signup", method="POST", data={"email": "form@example.com", "name": "Form"}
        ),
        request(),
    ):
        signup()
    assert events[0].body == {"clickId": CLICK, "email": "identified@example.com"}
