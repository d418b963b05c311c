"""The shop's views: signup is a sync view, checkout an async one; both are decorated."""

from __future__ import annotations

import itertools
import threading
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render

from affy_middleware import (
    current_visit,
    identify,
    set_lead_value,
    track_payment,
    track_registration,
)

from .._shop import PLANS, card_accepted, signup_errors, visit_attribution

_ids = itertools.count(1)
_ids_lock = threading.Lock()


def _customer(request: HttpRequest) -> dict[str, Any] | None:
    customer = request.session.get("customer")
    return customer if isinstance(customer, dict) else None


def _page(request: HttpRequest, template: str, status: int = 200, **context: Any) -> HttpResponse:
    context.setdefault("customer", _customer(request))
    context.update(visit=current_visit(), plans=PLANS)
    return render(request, f"shop/{template}", context, status=status)


def index(request: HttpRequest) -> HttpResponse:
    return _page(request, "index.html")


def pricing(request: HttpRequest) -> HttpResponse:
    return _page(request, "pricing.html")


@track_registration
def signup(request: HttpRequest) -> HttpResponse:
    plan = PLANS.get(request.POST.get("plan") or request.GET.get("plan", ""), PLANS["pro"])
    if request.method != "POST":
        return _page(request, "signup.html", plan=plan, errors=[], form={})
    email = request.POST.get("email", "").strip().lower()
    name = request.POST.get("name", "").strip()
    errors = signup_errors(email, name)
    if errors:
        # A 4xx: the decorator reports nothing for a failed signup.
        form = {"email": email, "name": name}
        return _page(request, "signup.html", 400, plan=plan, errors=errors, form=form)
    with _ids_lock:
        customer_id = next(_ids)
    request.session["customer"] = {
        "id": customer_id,
        "email": email,
        "name": name,
        "plan": plan.slug,
    }
    identify(email=email, customer_id=customer_id, name=name)
    return redirect("checkout")


@track_payment
async def checkout(request: HttpRequest) -> HttpResponse:
    customer = _customer(request)
    if customer is None:
        return redirect("signup")
    plan = PLANS[customer["plan"]]
    if request.method != "POST":
        return _page(request, "checkout.html", plan=plan, errors=[])
    if not card_accepted(request.POST.get("card", "")):
        return _page(request, "checkout.html", 402, plan=plan, errors=["Card declined."])
    identify(email=customer["email"])
    set_lead_value(plan.price)
    return redirect("thanks")


def thanks(request: HttpRequest) -> HttpResponse:
    customer = _customer(request)
    if customer is None:
        raise Http404
    return _page(request, "thanks.html", plan=PLANS[customer["plan"]])


def attribution(request: HttpRequest) -> JsonResponse:
    """What the middleware knows about this visitor (handy in the demo)."""
    return JsonResponse(visit_attribution(current_visit()), safe=False)
