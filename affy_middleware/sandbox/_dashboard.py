"""The dashboard at ``/``: the funnel per affiliate (``_funnel``), the latest events, the
links to the JSON listings and a reset button."""

from __future__ import annotations

import datetime
import functools
import html
import importlib.resources
import string
from typing import Any

from ._faults import Faults
from ._funnel import funnel_rows
from ._store import Store

__all__ = ["render_dashboard"]

#: Events listed under "Latest events".
LATEST = 50


@functools.lru_cache(maxsize=1)
def _template() -> string.Template:
    text = importlib.resources.files(__package__).joinpath("dashboard.html").read_text("utf-8")
    return string.Template(text)


def _cell(value: Any, css: str = "") -> str:
    attr = f' class="{css}"' if css else ""
    return f"<td{attr}>{html.escape(str(value))}</td>"


def _when(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _body_text(body: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v}" for k, v in body.items() if k != "clientId")
    return text if len(text) <= 160 else text[:157] + "..."


def _affiliate(event: dict[str, Any]) -> str:
    if event["unattributed"]:
        return "(unattributed: no click for this session)"
    return str(event["affiliate_reference"] or "")


def render_dashboard(store: Store, faults: Faults) -> str:
    event_rows = (
        "\n".join(
            "<tr>"
            + _cell(event["id"])
            + _cell(_when(event["received_at"]))
            + _cell(event["kind"])
            + _cell(event["body"].get("clientId", ""), "client")
            + _cell(_affiliate(event), "unattributed" if event["unattributed"] else "")
            + _cell(event["session_id"] or "")
            + _cell(_body_text(event["body"]))
            + "</tr>"
            for event in store.latest_events(LATEST)
        )
        or '<tr><td colspan="7">No events yet.</td></tr>'
    )
    active = {k: v for k, v in faults.snapshot().items() if v and k != "error_status"}
    total_events, total_requests = store.counts()
    unattributed = store.unattributed()
    return _template().substitute(
        total_events=total_events,
        total_requests=total_requests,
        duplicates=store.duplicates(),
        unattributed=unattributed,
        unattributed_class="unattributed" if unattributed else "",
        db=html.escape(store.path),
        faults=html.escape(", ".join(f"{k}={v}" for k, v in active.items()) or "none"),
        affiliate_rows=funnel_rows(store.affiliates()),
        event_rows=event_rows,
    )
