"""The PostgreSQL outbox's tables, and its URL shown without the password.

The tables are created on first use when missing; teams whose app user may not create
tables run ``affy outbox init`` (or apply ``affy outbox init --sql``) once as an owner.
Times are the server's (``now()``), so hosts with skewed clocks agree on leases.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

__all__ = ["PG_SCHEMA", "SCHEMES", "is_postgres_url", "redact_url", "scrub"]

#: URL schemes that name a PostgreSQL outbox.
SCHEMES = ("postgresql://", "postgres://")

#: Every statement is idempotent: run by whoever opens the outbox first (under an
#: advisory lock, since concurrent CREATE ... IF NOT EXISTS can still collide).
PG_SCHEMA = """\
CREATE TABLE IF NOT EXISTS affy_outbox (
    seq BIGSERIAL PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    order_key TEXT,
    kind TEXT NOT NULL,
    record BYTEA NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    owner_host TEXT,
    owner_pid INTEGER,
    owner_token TEXT,
    lease_until TIMESTAMPTZ NOT NULL DEFAULT '-infinity'
);
CREATE INDEX IF NOT EXISTS affy_outbox_visit ON affy_outbox (order_key, seq);
CREATE INDEX IF NOT EXISTS affy_outbox_owner ON affy_outbox (owner_token);
CREATE TABLE IF NOT EXISTS affy_outbox_dead (
    event_id TEXT PRIMARY KEY,
    order_key TEXT,
    kind TEXT NOT NULL,
    record BYTEA NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    reason TEXT NOT NULL,
    answer TEXT,
    buried_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
"""


def is_postgres_url(url: str) -> bool:
    return url.startswith(SCHEMES)


def _password(url: str) -> str | None:
    """The password a URL carries, in its user part or its ``password=`` parameter."""
    parts = urlsplit(url)
    if parts.password:
        return parts.password
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "password" and value:
            return value
    return None


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***``: safe for logs, reprs and errors."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.split(':', 1)[0]}:***@{host}"
        query = urlencode(
            [
                (k, "***" if k == "password" else v)
                for k, v in parse_qsl(parts.query, keep_blank_values=True)
            ],
            safe="*",
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:  # unparsable (a bad port...): say nothing of it but the scheme
        return url.split(":", 1)[0] + "://***"


def scrub(message: str, url: str) -> str:
    """A driver's message with the URL's password (and the URL) taken out, if present."""
    password = _password(url)
    message = message.replace(url, redact_url(url))
    if password:  # as written in the URL and as decoded (%40 is @ to the driver)
        for form in {password, unquote(password)}:
            message = message.replace(form, "***")
    return message
