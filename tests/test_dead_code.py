"""No unused code in the package: vulture at 60 % confidence (its lowest useful level:
functions, methods, classes, attributes and variables nothing reads) finds nothing but
the reviewed public names and framework hooks of ``vulture_whitelist.py``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import affy_middleware

PACKAGE = Path(affy_middleware.__file__).resolve().parent
WHITELIST = Path(__file__).resolve().parent / "vulture_whitelist.py"


def test_vulture_finds_no_unused_code() -> None:
    pytest.importorskip("vulture")
    run = subprocess.run(
        [sys.executable, "-m", "vulture", str(PACKAGE), str(WHITELIST), "--min-confidence", "60"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.stdout == "" and run.returncode == 0, run.stdout + run.stderr
