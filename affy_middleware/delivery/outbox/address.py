"""Which store the settings name, decided here and nowhere else: the outbox URL's scheme.

``postgresql://`` (or ``postgres://``) is the app's PostgreSQL (``postgres/``); a
``sqlite:///path`` URL, or ``AFFY_SPOOL_PATH``, the SQLite file (``sqlite/``; the
settings' checks turn the URL into that path). Everything that opens a store, writes a row
through the app's own connection or names the outbox in a message asks :func:`address`.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from ..._settings import Settings
from .postgres.schema import SCHEMES, redact_url

__all__ = ["Address", "Dialect", "address"]

Dialect = Literal["postgresql", "sqlite"]


class Address(NamedTuple):
    """Where an outbox is: ``("postgresql", url)`` or ``("sqlite", path)``."""

    dialect: Dialect
    location: str

    @property
    def shown(self) -> str:
        """The location for messages: a URL without its password, or the file path."""
        return redact_url(self.location) if self.dialect == "postgresql" else self.location

    def __repr__(self) -> str:  # never the URL's password
        return f"Address({self.dialect!r}, {self.shown!r})"


def address(settings: Settings) -> Address | None:
    """The outbox the settings name, or None."""
    if settings.outbox_url is not None and settings.outbox_url.startswith(SCHEMES):
        return Address("postgresql", settings.outbox_url)
    if settings.spool_path is not None:
        return Address("sqlite", settings.spool_path)
    return None
