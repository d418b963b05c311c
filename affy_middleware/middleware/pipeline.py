"""The one request fast path every adapter (WSGI, ASGI, Django) calls.

An adapter reads four things of its native request (the method, the raw query, the
``Cookie`` header, and how to make a request view), asks :meth:`Pipeline.decide`, hands the
decision to :meth:`Pipeline.enter` (or :meth:`Pipeline.aenter` on an event loop: the click
submitted, the visit stored under ``"affy.visit"``), appends the cookies to its response and
runs the app through :func:`~..attribution.context.call_with` (``acall_with``), the one
place ``current_visit()`` is set and reset. Most requests carry neither a query that may
land nor a cookie of ours: they cost two substring tests and no request view.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, Final

from .. import delivery
from .._logging import log_failure
from .._settings import Settings
from .._wire import Event
from ..attribution.decide import REISSUE, Attribution, ConsentHook
from ..attribution.request import RequestView
from ..attribution.visit import Visit

__all__ = ["Pipeline", "VISIT_KEY", "ViewFactory", "Outcome", "NOTHING", "asgi_cookie"]

#: Where the request's ``Visit`` (or None) is put in the environ or the scope.
VISIT_KEY: Final = "affy.visit"

#: ``view(native, query, cookie)``: the adapter's request view, made only when needed.
ViewFactory = Callable[[Any, Any, "str | None"], RequestView]

#: A request's ``(visit or None, cookies, click)``: a ``Decision``, or :data:`NOTHING`.
Outcome = tuple["Visit | None", tuple[str, ...], "Event | None"]

#: The outcome of a request that carries nothing of ours.
NOTHING: Final[Outcome] = (None, (), None)


class Pipeline:
    """The attribution of one middleware: its rules, and the steps around the app call.

    ``needles`` are the cookie names with ``=``: a ``Cookie`` header holding none of them
    carries no visit, and the decision is skipped.
    """

    __slots__ = ("settings", "attribution", "needles")

    def __init__(self, settings: Settings, consent: ConsentHook | None) -> None:
        self.settings = settings
        self.attribution = Attribution(settings, consent)
        self.needles = (settings.click_cookie + "=", settings.session_cookie + "=")

    def decide(
        self, native: Any, method: str | None, query: Any, cookie: str | None, view: ViewFactory
    ) -> Outcome:
        """What :meth:`Attribution.decide` says of this request (:data:`NOTHING` for no
        visit), making a request view only for a possible landing or a click cookie to
        re-issue. ``query``: the raw query (str or bytes, empty when none); ``method``: None
        for GET. Never raises:
        a failure is logged and the request carries no visit."""
        try:
            attribution = self.attribution
            if query and attribution.writes and attribution.might_land(query):
                decision = attribution.decide(view(native, query, cookie), may_land=True)
                return NOTHING if decision is None else decision
            click, session = self.needles
            if cookie and (click in cookie or session in cookie):
                # No landing: the cookies decide, read without a request view, unless a
                # click cookie may need re-issuing (then decide() reads the headers).
                found = attribution.returning(method or "GET", cookie, native)
                if found is REISSUE:
                    decision = attribution.decide(view(native, query, cookie))
                    return NOTHING if decision is None else decision
                if found is not None:
                    return found, (), None
        except Exception:
            log_failure("deciding the visit")
        return NOTHING

    def enter(self, store: MutableMapping[str, Any], decision: Outcome) -> Visit | None:
        """The click submitted (if any) and the visit in ``store["affy.visit"]``; returns
        the visit for the app call. Never raises for the click (a failure is logged)."""
        visit, _, event = decision
        if event is not None:
            self.submit(event)
        store[VISIT_KEY] = visit
        return visit

    async def aenter(self, store: MutableMapping[str, Any], decision: Outcome) -> Visit | None:
        """:meth:`enter` on an event loop: a click that would be sent inline (sync
        delivery) is submitted from a worker thread."""
        visit, _, event = decision
        if event is not None and not self.offer(event):
            await asyncio.to_thread(self.submit, event)
        store[VISIT_KEY] = visit
        return visit

    def offer(self, event: Event) -> bool:
        """:meth:`submit`, unless submitting would send inline: then False, and an async
        caller submits from a thread. Never raises (a failure is logged, and counts as
        submitted). Asked per event, never cached: a capture backend may stand in."""
        try:
            backend = delivery.backend_for(self.settings)
            if backend.blocks:
                return False
            backend.submit(event)
        except Exception:
            log_failure("enqueueing the click")
        return True

    def submit(self, event: Event) -> None:
        """Hands the click to delivery; never raises (a failure is logged)."""
        try:
            delivery.backend_for(self.settings).submit(event)
        except Exception:
            log_failure("enqueueing the click")


def asgi_cookie(scope: Mapping[str, Any]) -> str | None:
    """An ASGI scope's ``Cookie`` header as text, several joined with ``"; "`` (HTTP/2 may
    split it; Django's ASGI request joins them with ``","``, which no cookie parser splits).
    Header names are lower-case in ASGI (Starlette's ``Headers`` relies on that too)."""
    cookie = None
    try:  # a server's odd header list must not hurt: no cookie read, no visit
        for name, value in scope.get("headers") or ():
            if name == b"cookie":
                text = value.decode("latin-1")
                cookie = text if cookie is None else f"{cookie}; {text}"
    except Exception:
        log_failure("reading the cookies")
        return None
    return cookie
