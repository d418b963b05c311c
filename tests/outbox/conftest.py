"""Fixtures for the outbox tests: one real PostgreSQL server per session, a fresh
database per test. Skipped with a reason when Debian's server binaries are absent;
under ``CI=true`` that is a failure (``.ci/run`` installs them)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from _postgres import PostgresServer, find_binaries


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = find_binaries()
    if bindir is None:
        reason = "PostgreSQL server binaries absent (apt-get install postgresql)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + ": required under CI=true")
        pytest.skip(reason)
    try:
        import psycopg  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("psycopg is not installed: pip install -e '.[test]'")
        pytest.skip("psycopg is not installed (the postgres extra)")
    server = PostgresServer(bindir)
    try:
        server.start()
    except Exception:
        server.stop()
        raise
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> str:
    """The URL (with its password) of a fresh, empty database."""
    return postgres_server.create_db()
