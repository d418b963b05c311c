"""Tiny Shop: a small Flask shop wired to AFFY with the extension and both decorators.

``create_app(config)`` builds it; ``python -m examples.flask_shop`` serves it (see
``--help``). A visitor arrives through ``/?ref=<affiliate>``, browses the pricing, signs up
(``@track_registration``) and pays (``@track_payment``).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from flask import Flask, abort, jsonify, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from affy_middleware import (
    Settings,
    current_visit,
    identify,
    set_lead_value,
    track_payment,
    track_registration,
)
from affy_middleware.flask import Affy

from .._shop import PLANS, Customer, Plan, Store, card_accepted, signup_errors, visit_attribution

__all__ = ["create_app", "PLANS", "Plan"]


def create_app(config: Settings | Mapping[str, Any] | None = None) -> Flask:
    """The shop. ``config``: a ``Settings`` for AFFY, or a Flask config mapping
    (``AFFY_*`` keys, ``SECRET_KEY``...); the environment fills in the rest."""
    app = Flask(__name__)
    app.config["SECRET_KEY"] = secrets.token_hex(16)
    if isinstance(config, Mapping):
        app.config.update(config)
    Affy(app, settings=config if isinstance(config, Settings) else None)
    store = Store()
    app.extensions["shop"] = store

    def current_customer() -> Customer | None:
        customer_id = session.get("customer_id")
        return store.customers.get(customer_id) if isinstance(customer_id, int) else None

    @app.context_processor
    def inject() -> dict[str, Any]:
        return {"customer": current_customer(), "visit": current_visit(), "plans": PLANS}

    @app.get("/")
    def index() -> str:
        return render_template("index.html")

    @app.get("/pricing")
    def pricing() -> str:
        return render_template("pricing.html")

    @app.route("/signup", methods=["GET", "POST"])
    @track_registration
    def signup() -> str | Response | tuple[str, int]:
        plan = request.values.get("plan", "pro")
        if plan not in PLANS:
            plan = "pro"
        if request.method == "GET":
            return render_template("signup.html", plan=PLANS[plan], errors=[], form={})
        email = request.form.get("email", "").strip().lower()
        name = request.form.get("name", "").strip()
        errors = signup_errors(email, name)
        customer = None if errors else store.add(email, name, plan)
        if customer is None and not errors:
            errors.append("An account with this email already exists.")
        if errors or customer is None:
            # A 4xx: the decorator reports nothing for a failed signup.
            form = {"email": email, "name": name}
            return render_template("signup.html", plan=PLANS[plan], errors=errors, form=form), 400
        identify(email=customer.email, customer_id=str(customer.id), name=customer.name)
        session["customer_id"] = customer.id
        return redirect(url_for("checkout"))

    @app.route("/checkout", methods=["GET", "POST"])
    @track_payment
    def checkout() -> str | Response | tuple[str, int]:
        customer = current_customer()
        if customer is None:
            return redirect(url_for("signup"))
        plan = PLANS[customer.plan]
        if request.method == "GET":
            return render_template("checkout.html", plan=plan, errors=[])
        if not card_accepted(request.form.get("card", "")):
            return render_template("checkout.html", plan=plan, errors=["Card declined."]), 402
        customer.paid += plan.price
        identify(email=customer.email)
        set_lead_value(plan.price)
        return redirect(url_for("thanks"))

    @app.get("/thanks")
    def thanks() -> str:
        if current_customer() is None:
            abort(404)
        return render_template("thanks.html")

    @app.get("/attribution.json")
    def attribution() -> Response:
        """What the middleware knows about this visitor (handy in the demo)."""
        return jsonify(visit_attribution(current_visit()))

    return app
