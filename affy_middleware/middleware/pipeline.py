"""What the WSGI and the ASGI middleware share: the rules of one ``Settings`` and the one
place a decision is applied (the visit exposed, the click submitted, failures logged).

The middlewares keep only protocol plumbing: read the environ or scope, call
:meth:`Attribution.decide` on a request view, pass the decision to :meth:`Pipeline.enter`,
append its cookies to the response, and reset the context after the app. A request that
cannot land asks ``Attribution.returning`` first, with no view: its answer is a visit
alone (no cookie, no click), which the WSGI middleware exposes as it exposes "no visit".
"""

from __future__ import annotations

import contextvars
from typing import Any, Final

from .. import delivery
from .._logging import log_failure
from .._settings import Settings
from .._wire import Event
from ..attribution.context import _current
from ..attribution.decide import Attribution, ConsentHook
from ..attribution.visit import Visit

__all__ = ["Pipeline", "VISIT_KEY"]

#: Where the request's ``Visit`` (or None) is put in the environ or the scope.
VISIT_KEY: Final = "affy.visit"


class Pipeline:
    """The attribution of one middleware: its rules, and the steps around the app call.

    ``needles`` are the cookie names with ``=``: a ``Cookie`` header holding none of them
    carries no visit, and the middleware skips the decision.
    """

    __slots__ = ("settings", "attribution", "needles")

    def __init__(self, settings: Settings, consent: ConsentHook | None) -> None:
        self.settings = settings
        self.attribution = Attribution(settings, consent)
        self.needles = (settings.click_cookie + "=", settings.session_cookie + "=")

    def enter(
        self, native: Any, visit: Visit | None, event: Event | None
    ) -> contextvars.Token[Visit | None]:
        """Before the app call: the click submitted (unless None), the visit in
        ``native["affy.visit"]`` and ``current_visit()``. Reset the returned token after."""
        if event is not None:
            self.submit(event)
        native[VISIT_KEY] = visit
        return _current.set(visit)

    def blocks(self) -> bool:
        """Whether submitting sends inline (an HTTP call): async callers hop to a thread.
        Asked per event, never cached: the capture backend may stand in for the test."""
        try:
            return delivery.backend_for(self.settings).blocks
        except Exception:
            return False  # submit() meets the same failure and logs it

    def offer(self, event: Event) -> bool:
        """:meth:`submit`, unless submitting would send inline: then False, and an async
        caller submits from a thread. ``blocks()`` and ``submit`` in one backend look-up,
        for the ASGI landing. Never raises (a failure is logged, and counts as submitted)."""
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
