"""``AFFY_SPOOL_PATH``: a deprecated alias of ``AFFY_OUTBOX_URL=sqlite:///...``, that
still works and says so once per process."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from affy_middleware import Settings, _settings_sources
from affy_middleware.delivery.outbox.address import address


@pytest.fixture(autouse=True)
def fresh_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_settings_sources, "_warned", _settings_sources.threading.Event())


def test_the_alias_names_the_same_sqlite_outbox_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = str(tmp_path / "affy.sqlite")
    with caplog.at_level(logging.WARNING, logger="affy_middleware"):
        old = Settings.from_env(environ={"AFFY_SPOOL_PATH": path})
        Settings.from_env(environ={"AFFY_SPOOL_PATH": path})
        Settings.from_mapping({"AFFY_SPOOL_PATH": path})
    new = Settings.from_env(environ={"AFFY_OUTBOX_URL": f"sqlite:///{path}"})
    assert address(old) == address(new) == ("sqlite", path)
    warnings = [r.getMessage() for r in caplog.records if "AFFY_SPOOL_PATH" in r.getMessage()]
    assert len(warnings) == 1 and "AFFY_OUTBOX_URL=sqlite:///" in warnings[0]


def test_the_outbox_url_alone_warns_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="affy_middleware"):
        Settings.from_env(environ={"AFFY_OUTBOX_URL": f"sqlite:///{tmp_path}/a.sqlite"})
    assert not [r for r in caplog.records if "AFFY_SPOOL_PATH" in r.getMessage()]
