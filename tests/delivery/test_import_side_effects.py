"""Importing the library registers nothing (no exit handler, no metrics collector); the
first set-up does, once. Each case runs in a fresh interpreter: this one imported the
library long ago."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = r"""
import atexit, json, sys
import logging, httpx  # their own exit handlers, registered at their import
from prometheus_client import REGISTRY

def state():
    names = sorted(n for n in REGISTRY._names_to_collectors if n.startswith("affy_"))
    return {"atexit": atexit._ncallbacks(), "affy_metrics": len(names)}

before = state()
import affy_middleware
from affy_middleware import delivery
imported = state()
getattr(affy_middleware, sys.argv[1])()   # a first set-up: stats() or flush()
set_up = state()
delivery.set_up()                         # again: nothing more
again = state()
print(json.dumps([before, imported, set_up, again]))
"""


@pytest.mark.parametrize("first_call", ["stats", "flush"])
def test_import_registers_nothing_and_the_first_set_up_registers_once(first_call: str) -> None:
    pytest.importorskip("prometheus_client")
    run = subprocess.run(
        [sys.executable, "-c", PROBE, first_call],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "", "AFFY_CLIENT_ID": "7", "AFFY_API_KEY": "k"},
    )
    assert run.returncode == 0, run.stderr
    before, imported, set_up, again = json.loads(run.stdout)
    assert imported == before  # importing: no exit handler, no collector
    assert set_up["atexit"] == before["atexit"] + 1
    assert set_up["affy_metrics"] > 0
    assert again == set_up


def test_metrics_off_registers_no_collector_at_set_up() -> None:
    pytest.importorskip("prometheus_client")
    run = subprocess.run(
        [sys.executable, "-c", PROBE, "stats"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "", "AFFY_METRICS": "off"},
    )
    assert run.returncode == 0, run.stderr
    _, _, set_up, _ = json.loads(run.stdout)
    assert set_up["affy_metrics"] == 0
