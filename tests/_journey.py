"""A visitor's journey through a WSGI shop wrapped in the middleware, against the sandbox."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.test import Client

from affy_middleware import AffyMiddleware, Settings, identify, track_payment, track_registration

CHROME = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"


def shop(settings: Settings) -> AffyMiddleware:
    @track_registration
    def signup() -> None:
        identify(email="ann@example.com", customer_id=7, name="Ann")

    @track_payment(value="25.00")
    def checkout() -> None:
        pass

    views: dict[str, Callable[[], None]] = {"/signup": signup, "/checkout": checkout}

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        view = views.get(environ["PATH_INFO"])
        if view is not None:
            view()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    return AffyMiddleware(app, settings=settings)


def journey(settings: Settings, affiliate: str = "partner-7") -> None:
    """Land through an affiliate link, sign up, pay (three events)."""
    client = Client(shop(settings))
    headers = {"User-Agent": CHROME, "Accept": "text/html"}
    assert client.get(f"/?affy_ref={affiliate}", headers=headers).status_code == 200
    assert client.post("/signup", headers=headers).status_code == 200
    assert client.post("/checkout", headers=headers).status_code == 200
