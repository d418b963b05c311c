"""Fixtures for the outbox tests: one real PostgreSQL server per session, a fresh
database per test. Skipped with a reason when Debian's server binaries are absent;
under ``CI=true`` that is a failure (``.ci/run`` installs them)."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def _fleet_fixtures() -> Any:
    """The shop under real servers and the visitors walking it, from tests/fleet/ (one
    definition of the fleet for both suites)."""
    path = Path(__file__).resolve().parent.parent / "fleet" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_fleet_fixtures", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


_fleet = _fleet_fixtures()
serve_shop, fleet, affy = _fleet.serve_shop, _fleet.fleet, _fleet.affy
broken_affy = _fleet.broken_affy
