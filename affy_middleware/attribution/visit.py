"""What the middleware knows about one visitor: :class:`Visit`, and its lazy form.

``Visit`` is the public dataclass ``current_visit()`` returns. ``LazyVisit`` is the same
thing for a returning visitor, made by ``CookieRules.returning`` on the hot path: it reads
the session cookie and the companion cookie only when a field that needs them is first
read, and is a plain ``Visit`` to every reader (equality, ``repr``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any, Final

from .._settings import Settings
from .cookies import TOKEN, _cookie_value, companion_cookie_name, read_companion

__all__ = ["Visit", "LazyVisit"]


@dataclass(slots=True)
class Visit:
    """What the middleware knows about this request's visitor.

    ``click_id`` and ``session_id`` come from valid cookies or from this request's affiliate
    landing (``landed``). ``affiliate_reference`` is known on the landing and on later
    requests of a visit whose cookies this server set. ``identify()`` and
    ``set_lead_value()`` fill the customer fields during the request::

        visit = current_visit()
        if visit is not None and visit.referred:
            print(visit.affiliate_reference, visit.click_id)
    """

    click_id: str | None = None
    session_id: str | None = None
    affiliate_reference: str | None = None
    #: This request is an affiliate landing: new click id, cookies set, click reported.
    landed: bool = False
    #: Unix time of the click, when this server set (or re-issued) the click cookie.
    clicked_at: float | None = None
    #: The click's ``utm_source``/``source`` (on the landing only).
    source: str | None = None
    #: The server re-issued a click cookie written by AFFY's snippet on this request.
    reissued: bool = False
    #: Filled by ``identify()`` / ``set_lead_value()`` during the request.
    email: str | None = None
    customer_id: str | None = None
    customer_name: str | None = None
    lead_value: Decimal | None = None
    #: The request method (the decorators report on POST/PUT/PATCH by default).
    method: str = "GET"
    #: The middleware's settings (events of this visit go to their dispatcher).
    settings: Settings | None = field(default=None, repr=False, compare=False)
    #: The server-level request: the WSGI environ or the ASGI scope.
    native: Any = field(default=None, repr=False, compare=False)

    @property
    def referred(self) -> bool:
        """Whether the visitor came through an affiliate link (a click or session id)."""
        return self.click_id is not None or self.session_id is not None


_COMPARED_FIELDS: Final = tuple(f.name for f in fields(Visit) if f.compare)
#: Fields a returning visitor's visit fills on first access (see ``LazyVisit``).
_DEFAULTS: Final[dict[str, Any]] = {
    "landed": False,
    "source": None,
    "reissued": False,
    "email": None,
    "customer_id": None,
    "customer_name": None,
    "lead_value": None,
}


class LazyVisit(Visit):
    """A returning visitor's visit that reads its cookies only when asked.

    Made with the click id (or the session id), the method, the settings (which name the
    cookies), the native request and the cookie header; the other slots stay unset, so
    reading one raises inside its slot descriptor and lands in ``__getattr__``, which fills
    it once: the session id from the cookie, the companion's ``clicked_at`` and
    ``affiliate_reference``, or the field's default. A field code sets first is never
    overwritten. To every reader it is a plain :class:`Visit`.
    """

    __slots__ = ("_cookie",)
    _cookie: str

    def _cookie_named(self, name: str) -> str | None:
        return _cookie_value(self._cookie, name + "=")

    def __getattr__(self, name: str) -> Any:
        if name in _DEFAULTS:
            value = _DEFAULTS[name]
        elif name == "session_id":
            value = self._cookie_named(self.settings.session_cookie)  # type: ignore[union-attr]
            if value is not None and TOKEN.fullmatch(value) is None:
                value = None
        elif name == "affiliate_reference" or name == "clicked_at":
            self._read_companion()
            return object.__getattribute__(self, name)
        else:
            raise AttributeError(name)
        object.__setattr__(self, name, value)
        return value

    def _read_companion(self) -> None:
        clicked_at = ref = None
        click_id = self.click_id
        if click_id is not None:
            settings: Settings = self.settings  # type: ignore[assignment]  # always set
            companion = self._cookie_named(companion_cookie_name(settings.click_cookie))
            parsed = read_companion(companion, click_id) if companion else None
            if parsed is not None:
                clicked_at, ref = parsed
        for name, value in (("clicked_at", clicked_at), ("affiliate_reference", ref)):
            try:
                object.__getattribute__(self, name)
            except AttributeError:  # still unset (not written by code meanwhile)
                object.__setattr__(self, name, value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Visit):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in _COMPARED_FIELDS)

    __hash__ = None  # type: ignore[assignment]  # mutable, like Visit

    def __repr__(self) -> str:
        return Visit.__repr__(self).replace("LazyVisit(", "Visit(", 1)
