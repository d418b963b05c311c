"""The ``affy.*`` system checks, each triggered by a project that gets it wrong."""

from __future__ import annotations

import os
from typing import Any

import pytest
from _postgres import PASSWORD, USER

pytest.importorskip("django")

import djproject  # noqa: E402

djproject.setup_in_process()

from django.core import checks  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

SECURITY = "django.middleware.security.SecurityMiddleware"
OURS = "affy_middleware.django.AffyMiddleware"
SESSIONS = "django.contrib.sessions.middleware.SessionMiddleware"


def affy_ids(**settings: Any) -> list[str]:
    with override_settings(**settings):
        return sorted(m.id for m in checks.run_checks(tags=["affy"]))


@pytest.mark.parametrize(
    ("settings", "ids"),
    [
        pytest.param({"MIDDLEWARE": [SECURITY, OURS]}, [], id="right"),
        pytest.param({"AFFY_CLIENT_ID": "abc"}, ["affy.E001"], id="malformed-client-id"),
        pytest.param(
            {"AFFY_API_URL": "http://affy.example.com"}, ["affy.E001"], id="plain-http-api-url"
        ),
        pytest.param({"MIDDLEWARE": [SECURITY, SESSIONS]}, ["affy.W001"], id="missing"),
        pytest.param({"MIDDLEWARE": [SECURITY, OURS, SESSIONS, OURS]}, ["affy.E002"], id="twice"),
        pytest.param(
            {"MIDDLEWARE": [OURS, SECURITY], "SECURE_SSL_REDIRECT": True},
            ["affy.E003"],
            id="before-ssl-redirect",
        ),
        pytest.param(
            {"MIDDLEWARE": [OURS, SECURITY], "SECURE_SSL_REDIRECT": False},
            [],
            id="before-security-without-redirect",
        ),
        pytest.param(
            {"MIDDLEWARE": ["djproject.middleware.Consenting", SECURITY]},
            [],
            id="a-subclass-counts",
        ),
    ],
)
def test_checks(settings: dict[str, Any], ids: list[str]) -> None:
    assert affy_ids(**settings) == ids


def test_e001_names_the_setting() -> None:
    with override_settings(AFFY_CLIENT_ID="abc"):
        (error,) = checks.run_checks(tags=["affy"])
    assert "AFFY_CLIENT_ID" in error.msg and error.level == checks.ERROR


# -- affy.E004: the PostgreSQL outbox's tables --------------------------------------------


@pytest.fixture(scope="module")
def pg_server() -> Any:
    from _postgres import PostgresServer, find_binaries

    bindir = find_binaries()
    if bindir is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL server binaries absent: required under CI=true")
        pytest.skip("PostgreSQL server binaries absent (apt-get install postgresql)")
    pytest.importorskip("psycopg")
    server = PostgresServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def limited_user(server: Any) -> str:
    """A fresh database and a login that may connect but not create tables (PostgreSQL
    15's default for a schema it does not own); its URL."""
    import psycopg

    owner_url = server.create_db()
    database = owner_url.rsplit("/", 1)[1]
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE \"app_{database}\" LOGIN PASSWORD 'app-pw-9q'")
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute(f'REVOKE CREATE ON SCHEMA public FROM PUBLIC, "app_{database}"')
    return owner_url.replace(f"{USER}:{PASSWORD}@", f"app_{database}:app-pw-9q@")


def test_e004_names_affy_outbox_init_when_the_tables_are_missing(pg_server: Any) -> None:
    url = limited_user(pg_server)
    with override_settings(AFFY_OUTBOX_URL=url, MIDDLEWARE=[SECURITY, OURS]):
        (error,) = checks.run_checks(tags=["affy"])
    assert error.id == "affy.E004" and error.level == checks.ERROR
    assert "affy outbox init" in error.hint and "app-pw-9q" not in error.msg + error.hint


def test_no_e004_once_the_owner_ran_init_or_when_tables_can_be_made(pg_server: Any) -> None:
    import psycopg

    from affy_middleware._wire import Event, click_body
    from affy_middleware.delivery.outbox.postgres.schema import PG_SCHEMA
    from affy_middleware.delivery.outbox.postgres.store import PostgresOutbox

    url = limited_user(pg_server)
    role = url.split("//", 1)[1].split(":", 1)[0]
    owner_url = url.replace(f"{role}:app-pw-9q@", f"{USER}:{PASSWORD}@")
    with psycopg.connect(owner_url, autocommit=True) as conn:  # what `affy outbox init` runs
        conn.execute(PG_SCHEMA)
        # the grants E004's hint names
        conn.execute(
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"'
        )
        conn.execute(f'GRANT USAGE ON SEQUENCE affy_outbox_seq_seq TO "{role}"')
    for ready in (url, pg_server.create_db()):  # initialised / the owner creates on first use
        assert affy_ids(AFFY_OUTBOX_URL=ready, MIDDLEWARE=[SECURITY, OURS]) == []
    outbox = PostgresOutbox(url)  # and the app's user can write and claim with them
    try:
        body = click_body(1, affiliate_reference="p1", click_id="c1", session_id="s1")
        outbox.put(Event(kind="click", body=body, order_key="s1"), claimed=False)
        assert [e.kind for e in outbox.claim(5)] == ["click"]
    finally:
        outbox.close()


def test_no_e004_when_postgresql_is_unreachable() -> None:
    down = "postgresql://app:pw@127.0.0.1:9/app"  # nothing listens on port 9
    assert affy_ids(AFFY_OUTBOX_URL=down, MIDDLEWARE=[SECURITY, OURS]) == []
