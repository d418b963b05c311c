"""Neither metrics library installed (or ``AFFY_METRICS=off``): nothing is imported, the
request path works as before."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = """
import sys
if sys.argv[1] == "hidden":  # as if neither library were installed
    sys.modules["prometheus_client"] = None
    sys.modules["opentelemetry"] = None
from werkzeug.test import Client
from affy_middleware import AffyMiddleware, Settings, stats
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
settings = Settings(client_id=1, api_url="http://127.0.0.1:9", delivery="off")
client = Client(AffyMiddleware(app, settings=settings))
response = client.get("/?affy_ref=p1", headers={"User-Agent": "Mozilla/5.0 Chrome/1"})
assert response.status_code == 200
loaded = [m for m in ("prometheus_client", "opentelemetry.metrics") if sys.modules.get(m)]
print(",".join(loaded) or "none")
"""


@pytest.mark.parametrize(
    ("mode", "env", "expected"),
    [
        pytest.param("hidden", {}, "none", id="not-installed"),
        pytest.param("installed", {"AFFY_METRICS": "off"}, "none", id="opted-out"),
        pytest.param("installed", {}, "prometheus_client,opentelemetry.metrics", id="installed"),
    ],
)
@pytest.mark.process
def test_what_is_imported(mode: str, env: dict[str, str], expected: str) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AFFY_")}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected
