"""The dashboard's funnel: per affiliate, clicks -> registrations -> payments as bars.

Plain HTML and CSS (no script, no CDN): each step is a bar whose width is its share of
the affiliate's largest step, so every row reads as a funnel; the rates sit beside it.
"""

from __future__ import annotations

import html
from decimal import Decimal

from ._rows import AffiliateRow

__all__ = ["funnel_rows", "rate"]

#: The unattributed row's name: leads by session that arrived before any click.
NO_AFFILIATE = "(no affiliate: unattributed leads)"


def rate(part: int, whole: int) -> str:
    """``part`` as a share of ``whole``, for a conversion rate ("-" when undefined)."""
    if whole <= 0:
        return "-"
    return f"{Decimal(part * 100) / Decimal(whole):.1f}%"


def _step(name: str, count: int, widest: int, noun: str) -> str:
    width = 0.0 if widest <= 0 else 100.0 * count / widest
    label = noun if count != 1 else noun.removesuffix("s")
    return (
        f'<div class="step {name}"><span class="track">'
        f'<span class="bar" style="width:{width:.1f}%"></span></span>'
        f'<span class="count">{count}</span> {label}</div>'
    )


def _row(row: AffiliateRow) -> str:
    name = row.affiliate_reference
    shown = html.escape(name) if name else NO_AFFILIATE
    widest = max(row.clicks, row.registrations, row.payments)
    funnel = "".join(
        [
            _step("clicks", row.clicks, widest, "clicks"),
            _step("registrations", row.registrations, widest, "registrations"),
            _step("payments", row.payments, widest, "payments"),
        ]
    )
    clients = ", ".join(str(c) for c in row.client_ids) or "-"
    css = "affiliate" if name else "affiliate unattributed"
    return (
        f'<tr class="{css}" data-affiliate="{html.escape(name, quote=True)}" '
        f'data-clicks="{row.clicks}" data-registrations="{row.registrations}" '
        f'data-payments="{row.payments}">'
        f'<th scope="row">{shown}</th>'
        f'<td class="client">{clients}</td>'
        f'<td class="funnel">{funnel}</td>'
        f'<td class="num click-to-registration">{rate(row.registrations, row.clicks)}</td>'
        f'<td class="num registration-to-payment">{rate(row.payments, row.registrations)}</td>'
        f'<td class="num revenue">{row.revenue:.2f}</td>'
        "</tr>"
    )


def funnel_rows(rows: list[AffiliateRow]) -> str:
    """The ``<tbody>`` lines of the per-affiliate table."""
    if not rows:
        return '<tr><td colspan="6">Nothing recorded yet.</td></tr>'
    return "\n".join(_row(row) for row in rows)
