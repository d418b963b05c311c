from decimal import Decimal

from shop.billing import record_renewal
from shop.models import Customer


def test_a_landing_sets_the_cookies_and_reports_the_click(client, affy_events, db):
    response = client.get("/?partner=partner42&utm_source=newsletter")

    assert response.status_code == 200
    click = affy_events.one("click")
    assert click.body["affiliateReference"] == "partner42"
    assert click.body["source"] == "newsletter"
    assert response.cookies["affy_click_id"].value == click.body["clickId"]
    assert client.cookies["affy_session_id"].value == click.body["sessionId"]


def test_a_signup_is_reported_when_it_commits(
    client, affy_events, db, django_capture_on_commit_callbacks
):
    client.get("/?partner=partner42")

    # `db` runs the test in a transaction that never commits: run the on-commit callbacks.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/signup", {"email": "ann@example.com"})

    assert response.status_code == 201
    click, registration = affy_events
    assert registration.kind == "registration"
    assert registration.body == {"clickId": click.body["clickId"], "email": "ann@example.com"}
    assert Customer.objects.filter(email="ann@example.com").exists()


def test_without_the_commit_the_signup_is_not_reported_yet(client, affy_events, db):
    client.get("/?partner=partner42")

    response = client.post("/signup", {"email": "ann@example.com"})

    assert response.status_code == 201
    assert affy_events.kinds == ["click"]  # the registration waits for a commit


def test_a_rolled_back_signup_reports_nothing(
    client, affy_events, db, django_capture_on_commit_callbacks
):
    client.get("/?partner=partner42")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post("/signup", {"email": "bob@example.com", "coupon": "expired"})

    assert response.status_code == 200
    assert callbacks == []
    assert affy_events.kinds == ["click"]
    assert not Customer.objects.exists()


def test_real_commits_with_transactional_db(client, affy_events, transactional_db):
    client.get("/?partner=partner42")

    client.post("/signup", {"email": "cy@example.com"})
    client.post("/signup", {"email": "dee@example.com", "coupon": "expired"})

    assert [event.body["email"] for event in affy_events.of("registration")] == [
        "cy@example.com"
    ]
    assert list(Customer.objects.values_list("email", flat=True)) == ["cy@example.com"]


def test_settings_overrides_are_seen(client, affy_events, db, settings):
    settings.AFFY_CONSENT_COOKIE = "analytics"

    held = client.get("/?partner=partner42")
    assert "affy_click_id" not in held.cookies
    assert affy_events == []

    client.cookies["analytics"] = "yes"
    client.get("/?partner=partner42")
    assert affy_events.kinds == ["click"]


def test_a_renewal_outside_a_request_uses_settings_py(affy_events):
    session_id = "s" * 22  # stored when the customer signed up

    assert record_renewal(session_id, Decimal("49.00")) is True

    payment = affy_events.one("payment")
    assert payment.body == {
        "clientId": 4242,  # AFFY_CLIENT_ID from settings.py
        "leadType": "PAYMENT",
        "leadValue": Decimal("49.00"),
        "sessionId": session_id,
    }

