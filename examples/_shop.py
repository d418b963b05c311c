"""What every Tiny Shop (Flask, FastAPI, Django) shares: the plans, the customers, the checks.

Only the web framework differs between the shops; their catalogue, their signup and card
rules and what ``/attribution.json`` shows come from here.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from affy_middleware import Visit

__all__ = [
    "Customer",
    "PLANS",
    "Plan",
    "Store",
    "card_accepted",
    "signup_errors",
    "visit_attribution",
]


@dataclass(frozen=True)
class Plan:
    slug: str
    name: str
    price: Decimal
    blurb: str


PLANS: dict[str, Plan] = {
    p.slug: p
    for p in (
        Plan("starter", "Starter", Decimal("19.00"), "One shop, 100 orders a month"),
        Plan("pro", "Pro", Decimal("49.00"), "Three shops, unlimited orders"),
        Plan("team", "Team", Decimal("99.00"), "Ten shops, five seats, priority support"),
    )
}


@dataclass
class Customer:
    id: int
    email: str
    name: str
    plan: str
    paid: Decimal = Decimal("0.00")


class Store:
    """Customers and their shop sessions, in memory (a real shop has a database here)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.customers: dict[int, Customer] = {}
        self.by_email: dict[str, int] = {}
        self.sessions: dict[str, int] = {}

    def add(self, email: str, name: str, plan: str) -> Customer | None:
        """A new customer, or None when this email already has an account."""
        with self._lock:
            if email in self.by_email:
                return None
            customer = Customer(len(self.customers) + 1, email, name, plan)
            self.customers[customer.id] = customer
            self.by_email[email] = customer.id
            return customer

    def open_session(self, customer: Customer) -> str:
        """A new session token for ``customer`` (for a shop that keeps its own cookie)."""
        token = secrets.token_urlsafe(18)
        with self._lock:
            self.sessions[token] = customer.id
        return token

    def by_session(self, token: str) -> Customer | None:
        customer_id = self.sessions.get(token)
        return self.customers.get(customer_id) if customer_id is not None else None


def signup_errors(email: str, name: str) -> list[str]:
    """What is wrong with a signup form (``email`` and ``name`` already stripped)."""
    errors = []
    if "@" not in email or len(email) > 254:
        errors.append("Please enter a valid email address.")
    if not name or len(name) > 100:
        errors.append("Please enter your name.")
    return errors


def card_accepted(card: str) -> bool:
    """The shop's stand-in for a card processor: 12 to 19 digits (spaces allowed)."""
    card = card.replace(" ", "")
    return card.isdigit() and 12 <= len(card) <= 19


def visit_attribution(visit: Visit | None) -> dict[str, Any] | None:
    """What the middleware knows about this visitor (``/attribution.json``)."""
    if visit is None:
        return None
    return {
        "click_id": visit.click_id,
        "session_id": visit.session_id,
        "affiliate_reference": visit.affiliate_reference,
        "clicked_at": visit.clicked_at,
    }
