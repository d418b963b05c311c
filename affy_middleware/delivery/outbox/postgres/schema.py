"""The PostgreSQL outbox's tables and every statement its store runs (one place for its
SQL, as procrastinate keeps its queries), and its URL without the password.

The tables are created on first use when missing; teams whose app user may not create
tables run ``affy outbox init`` (or apply ``affy outbox init --sql``) once as an owner.
Times are the server's (``now()``), so hosts with skewed clocks agree on leases.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

__all__ = [
    "APP_INSERT",
    "BURY",
    "CLAIM",
    "COUNT",
    "DELETE",
    "OWNED",
    "OWNERS_HERE",
    "RELEASE",
    "RELEASE_UNKNOWN",
    "RENEW",
    "RENEW_ONE",
    "PG_SCHEMA",
    "PUT",
    "SCHEMES",
    "STATES",
    "is_postgres_url",
    "redact_url",
    "scrub",
]

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


#: Lease up to ``limit`` rows nobody holds (or a dead local process held), each the
#: oldest row of its visit; SKIP LOCKED lets relays claim side by side without waiting.
CLAIM = """
UPDATE affy_outbox AS o
   SET owner_host = %(host)s, owner_pid = %(pid)s, owner_token = %(token)s,
       lease_until = now() + make_interval(secs => %(lease)s)
  FROM (SELECT c.seq FROM affy_outbox AS c
         WHERE (c.owner_token IS NULL OR c.lease_until < now()
                OR (c.owner_host = %(host)s AND c.owner_pid = ANY(%(dead)s)))
           AND c.owner_token IS DISTINCT FROM %(token)s
           AND (c.order_key IS NULL OR NOT EXISTS (
                SELECT 1 FROM affy_outbox AS e
                 WHERE e.order_key = c.order_key AND e.seq < c.seq))
         ORDER BY c.seq LIMIT %(limit)s
         FOR UPDATE SKIP LOCKED) AS pick
 WHERE o.seq = pick.seq
RETURNING o.seq, o.event_id, o.record, o.kind, o.order_key, o.created_at
"""

#: Store an event, leased to the writer only when no earlier row of its visit is held
#: elsewhere or waiting (then it waits its turn in the outbox).
PUT = """
WITH head AS (
  SELECT %(claim)s AND NOT EXISTS (
    SELECT 1 FROM affy_outbox AS e WHERE e.order_key = %(key)s
       AND e.owner_token IS DISTINCT FROM %(token)s) AS mine)
INSERT INTO affy_outbox (event_id, order_key, kind, record, created_at,
                         owner_host, owner_pid, owner_token, lease_until)
SELECT %(id)s, %(key)s, %(kind)s, %(record)s, %(created)s,
       CASE WHEN mine THEN %(host)s END, CASE WHEN mine THEN %(pid)s::int END,
       CASE WHEN mine THEN %(token)s END,
       CASE WHEN mine THEN now() + make_interval(secs => %(lease)s) ELSE '-infinity' END
  FROM head
ON CONFLICT (event_id) DO NOTHING
RETURNING owner_token IS NOT NULL
"""

#: After a PUT that found its row there already: whether the row is leased to this handle.
OWNED = """
SELECT owner_token IS NOT DISTINCT FROM %(token)s AND lease_until >= now()
  FROM affy_outbox WHERE event_id = %(id)s
"""

#: AFFY accepted these events: their rows go (one statement for concurrent deletes).
DELETE = "DELETE FROM affy_outbox WHERE event_id = ANY(%s)"

#: Rows given back (at shutdown, or an event handed over) for anyone to claim at once.
RELEASE = (
    "UPDATE affy_outbox SET owner_host = NULL, owner_pid = NULL, owner_token = NULL,"
    " lease_until = '-infinity' WHERE event_id = ANY(%s) AND owner_token = %s"
)

#: Rows leased to a handle that it does not know of (a claim cut off after the server ran
#: it), given back: they would hold their visits back until their lease ran out.
RELEASE_UNKNOWN = (
    "UPDATE affy_outbox SET owner_host = NULL, owner_pid = NULL, owner_token = NULL,"
    " lease_until = '-infinity' WHERE owner_token = %s AND NOT (event_id = ANY(%s))"
)

#: The leases of the rows a handle holds, extended; those still its own come back.
RENEW = (
    "UPDATE affy_outbox SET lease_until = now() + make_interval(secs => %s)"
    " WHERE owner_token = %s AND event_id = ANY(%s) RETURNING event_id"
)

#: One row's lease, extended if it is still this handle's (a late renewal's check).
RENEW_ONE = (
    "UPDATE affy_outbox SET lease_until = now() + make_interval(secs => %s)"
    " WHERE event_id = %s AND owner_token = %s"
)

#: The processes of this host that hold live leases (those found dead lose theirs).
OWNERS_HERE = (
    "SELECT DISTINCT owner_pid FROM affy_outbox WHERE owner_host = %s"
    " AND owner_token <> %s AND lease_until >= now()"
)

COUNT = "SELECT count(*) FROM affy_outbox"

#: A row nobody holds, written by the app through its own connection (``app_rows.py``);
#: ``format`` placeholders, as Django's cursors take.
APP_INSERT = (
    "INSERT INTO affy_outbox (event_id, order_key, kind, record, created_at)"
    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING"
)

#: Rows by state (pending, leased, dead) in one statement: one round trip per scrape.
STATES = """
SELECT count(*) FILTER (WHERE owner_token IS NULL OR lease_until < now()),
       count(*) FILTER (WHERE owner_token IS NOT NULL AND lease_until >= now()),
       (SELECT count(*) FROM affy_outbox_dead)
  FROM affy_outbox
"""

#: Move a row to the dead letters, with the reason and AFFY's answer; how many rows left
#: the outbox (0: someone else moved or deleted it first, and counts it).
BURY = """
WITH moved AS (DELETE FROM affy_outbox WHERE event_id = %(id)s
               RETURNING event_id, order_key, kind, record, created_at),
     dead AS (INSERT INTO affy_outbox_dead (event_id, order_key, kind, record, created_at,
                                            reason, answer)
              SELECT event_id, order_key, kind, record, created_at, %(reason)s, %(answer)s
                FROM moved
              ON CONFLICT (event_id) DO NOTHING)
SELECT count(*) FROM moved
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
