"""Tiny Shop on FastAPI: ``AffyASGIMiddleware`` and both decorators on ``async def`` endpoints.

``create_app(config)`` builds it; ``python -m examples.fastapi_shop`` serves it with uvicorn
(see ``--help``), and so does ``uvicorn --factory examples.fastapi_shop:create_app``. A
visitor arrives through ``/?ref=<affiliate>``, browses the pricing, signs up
(``@track_registration``) and pays (``@track_payment``).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from affy_middleware import (
    AffyASGIMiddleware,
    Settings,
    flush,
    identify,
    set_lead_value,
    track_payment,
    track_registration,
)
from affy_middleware.fastapi import CurrentVisit

from .._shop import PLANS, Customer, Plan, Store, card_accepted, signup_errors, visit_attribution

__all__ = ["create_app", "PLANS", "Plan"]

#: The shop's own cookie (it sits next to AFFY's in the same responses).
SESSION_COOKIE = "shop_session"


#: An optional form field: a missing one is the view's to reject (a 400 page), not a 422.
Field = Annotated[str, Form()]

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:880px;margin:0 auto;padding:16px 24px;"
    "color:#1d2330;background:#f6f7fb}.errors{color:#c92a2a}footer{color:#667}"
)


def page(title: str, body: str, *, customer: Customer | None, visit: CurrentVisit) -> str:
    nav = '<a href="/checkout">Checkout</a>' if customer else '<a href="/signup">Sign up</a>'
    footer = ""
    if visit is not None and visit.referred:
        who = html.escape(visit.affiliate_reference or "a partner")
        footer = f'<span id="referral">Referred by {who}</span>'
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{title} · Tiny Shop"
        f"</title><style>{STYLE}</style></head><body><header><a href='/'><b>Tiny Shop</b></a> "
        f'<a href="/pricing">Pricing</a> {nav}</header><main>{body}</main>'
        f"<footer>{footer}</footer></body></html>"
    )


def errors_html(errors: list[str]) -> str:
    if not errors:
        return ""
    return '<ul class="errors">' + "".join(f"<li>{html.escape(e)}</li>" for e in errors) + "</ul>"


def create_app(config: Settings | Mapping[str, Any] | None = None) -> FastAPI:
    """The shop. ``config``: a ``Settings`` for AFFY, or a mapping of ``AFFY_*`` keys; the
    environment fills in the rest (``uvicorn --factory`` calls it without arguments)."""
    settings = config if isinstance(config, Settings) else Settings.from_mapping(config or {})
    app = FastAPI(title="Tiny Shop")
    # Settings built here, so a malformed AFFY_* variable fails at start-up.
    app.add_middleware(AffyASGIMiddleware, settings=settings)
    store = Store()
    app.state.store = store

    def current_customer(request: Request) -> Customer | None:
        return store.by_session(request.cookies.get(SESSION_COOKIE, ""))

    @app.get("/", response_class=HTMLResponse)
    async def index(request: Request, visit: CurrentVisit) -> str:
        body = (
            "<h1>Sell online in an afternoon.</h1><p>A storefront, a checkout and invoices."
            '</p><p><a id="see-pricing" href="/pricing">See pricing</a></p>'
        )
        return page("Home", body, customer=current_customer(request), visit=visit)

    @app.get("/pricing", response_class=HTMLResponse)
    async def pricing(request: Request, visit: CurrentVisit) -> str:
        cards = "".join(
            f'<div class="card"><h2>{p.name}</h2><div class="price">${p.price}</div>'
            f'<p>{p.blurb}</p><a id="choose-{p.slug}" href="/signup?plan={p.slug}">'
            f"Choose {p.name}</a></div>"
            for p in PLANS.values()
        )
        return page("Pricing", f"<h1>Pricing</h1>{cards}", customer=None, visit=visit)

    def signup_form(plan: Plan, errors: list[str], form: Mapping[str, str]) -> str:
        name = html.escape(form.get("name", ""))
        email = html.escape(form.get("email", ""))
        return (
            f"<h1>Create your account</h1><p>Plan: <strong>{plan.name}</strong> "
            f"(${plan.price} a month)</p>{errors_html(errors)}"
            f'<form method="post" action="/signup"><input type="hidden" name="plan" '
            f'value="{plan.slug}"><label>Name <input id="name" name="name" value="{name}" '
            f'required></label><label>Email <input id="email" name="email" type="email" '
            f'value="{email}" required></label><button id="signup-submit" type="submit">'
            "Create account</button></form>"
        )

    @app.get("/signup", response_class=HTMLResponse)
    async def signup_page(request: Request, visit: CurrentVisit, plan: str = "pro") -> str:
        chosen = PLANS.get(plan, PLANS["pro"])
        return page("Sign up", signup_form(chosen, [], {}), customer=None, visit=visit)

    @app.post("/signup")
    @track_registration
    async def signup(
        visit: CurrentVisit, email: Field = "", name: Field = "", plan: Field = "pro"
    ) -> Response:
        chosen = PLANS.get(plan, PLANS["pro"])
        email = email.strip().lower()
        name = name.strip()
        errors = signup_errors(email, name)
        customer = None if errors else store.add(email, name, chosen.slug)
        if customer is None and not errors:
            errors.append("An account with this email already exists.")
        if errors or customer is None:
            # A 4xx: the decorator reports nothing for a failed signup.
            body = signup_form(chosen, errors, {"email": email, "name": name})
            return HTMLResponse(page("Sign up", body, customer=None, visit=visit), 400)
        token = store.open_session(customer)
        identify(email=customer.email, customer_id=str(customer.id), name=customer.name)
        response = RedirectResponse("/checkout", status_code=303)
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax")
        return response

    def checkout_form(customer: Customer, errors: list[str]) -> str:
        plan = PLANS[customer.plan]
        return (
            f"<h1>Checkout</h1><p>{html.escape(customer.name)}, you are buying "
            f'<strong>{plan.name}</strong>: <span id="total">${plan.price}</span></p>'
            f'{errors_html(errors)}<form method="post" action="/checkout"><label>Card number '
            '(test: 4242 4242 4242 4242) <input id="card" name="card" required></label>'
            f'<button id="pay" type="submit">Pay ${plan.price}</button></form>'
        )

    @app.get("/checkout", response_model=None)
    async def checkout_page(request: Request, visit: CurrentVisit) -> Response:
        customer = current_customer(request)
        if customer is None:
            return RedirectResponse("/signup", status_code=303)
        return HTMLResponse(
            page("Checkout", checkout_form(customer, []), customer=customer, visit=visit)
        )

    @app.post("/checkout")
    @track_payment
    async def checkout(request: Request, visit: CurrentVisit, card: Field = "") -> Response:
        customer = current_customer(request)
        if customer is None:
            return RedirectResponse("/signup", status_code=303)
        if not card_accepted(card):
            body = checkout_form(customer, ["Card declined."])
            return HTMLResponse(page("Checkout", body, customer=customer, visit=visit), 402)
        plan = PLANS[customer.plan]
        customer.paid += plan.price
        identify(email=customer.email)
        set_lead_value(plan.price)
        return RedirectResponse("/thanks", status_code=303)

    @app.get("/thanks", response_class=HTMLResponse)
    async def thanks(request: Request, visit: CurrentVisit) -> Response:
        customer = current_customer(request)
        if customer is None:
            return HTMLResponse("Not found", 404)
        body = (
            f'<h1 id="thanks">Thank you, {html.escape(customer.name)}!</h1><p>Your '
            f"{PLANS[customer.plan].name} plan is active.</p>"
        )
        return HTMLResponse(page("Thank you", body, customer=customer, visit=visit))

    @app.get("/attribution.json")
    async def attribution(visit: CurrentVisit) -> JSONResponse:
        """What the middleware knows about this visitor (handy in the demo)."""
        return JSONResponse(visit_attribution(visit))

    @app.post("/_affy/flush")
    async def flush_events(request: Request) -> JSONResponse:
        """Deliver queued events now (for demos and tests; only from this machine)."""
        client = request.client
        if client is None or client.host not in ("127.0.0.1", "::1", "testclient"):
            return JSONResponse({"error": "forbidden"}, 403)
        from anyio import to_thread

        delivered = await to_thread.run_sync(flush, settings.flush_timeout)
        return JSONResponse({"delivered": delivered})

    return app
