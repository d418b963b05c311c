"""AFFY_OUTBOX_URL: sqlite:/// is the SQLite outbox (AFFY_SPOOL_PATH's alias),
postgresql:// the fleet's; a bad URL is a set-up error that never echoes the password."""

from __future__ import annotations

import pytest

from affy_middleware import AffyConfigError, Settings
from affy_middleware.delivery.outbox import outbox_location

PG = "postgresql://app:hunter2-pw@db.internal:5432/shop?sslmode=require"


def test_sqlite_url_is_the_spool_path() -> None:
    s = Settings.from_env({"AFFY_OUTBOX_URL": "sqlite:////var/lib/app/affy.db"})
    assert s.spool_path == "/var/lib/app/affy.db"
    assert outbox_location(s) == "/var/lib/app/affy.db"
    same = {"AFFY_OUTBOX_URL": "sqlite:////x/a.db", "AFFY_SPOOL_PATH": "/x/a.db"}
    assert Settings.from_env(same).spool_path == "/x/a.db"
    assert Settings.from_env({"AFFY_SPOOL_PATH": "/x/b.db"}).outbox_url is None


def test_postgres_url_is_kept_and_shown_without_its_password() -> None:
    s = Settings.from_env({"AFFY_OUTBOX_URL": PG})
    assert s.outbox_url == PG and s.spool_path is None
    assert outbox_location(s) == "postgresql://app:***@db.internal:5432/shop?sslmode=require"
    assert "hunter2" not in repr(s) and "hunter2" not in str(s)
    query = Settings(outbox_url="postgresql://db/shop?user=app&password=hunter2-pw")
    assert "hunter2" not in (outbox_location(query) or "")


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({"AFFY_OUTBOX_URL": "mysql://app:hunter2-pw@db/shop"}, "must start with"),
        ({"AFFY_OUTBOX_URL": "sqlite:///"}, "names no file"),
        ({"AFFY_OUTBOX_URL": "sqlite:////a.db", "AFFY_SPOOL_PATH": "/b.db"}, "AFFY_SPOOL_PATH"),
        ({"AFFY_OUTBOX_URL": PG, "AFFY_SPOOL_PATH": "/b.db"}, "set one"),
        ({"AFFY_OUTBOX_URL": "postgresql://app:hunter2-pw@db:port/x"}, "bad port"),
    ],
)
def test_bad_outbox_urls_fail_at_set_up_without_the_password(
    environ: dict[str, str], problem: str
) -> None:
    with pytest.raises(AffyConfigError) as caught:
        Settings.from_env(environ)
    assert problem in str(caught.value) and "AFFY_OUTBOX_URL" in str(caught.value)
    assert "hunter2" not in str(caught.value)
