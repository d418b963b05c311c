"""What the middleware benchmarks share: a browser's headers, the µs format, and the
"decorated vs undecorated signup while AFFY is slow" timing over real keep-alive HTTP."""

from __future__ import annotations

import http.client
import statistics
import time

from affy_middleware import Settings

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
OTHER_COOKIES = "session=eyJhbGciOiJIUzI1NiJ9.eyJ1aWQiOjQyfQ.sig; theme=dark; _ga=GA1.1.123.456"


def affy_down() -> Settings:
    """AFFY "down" (nothing listens on port 9): the real dispatcher accepts events and its
    worker pauses; the queue is sized so nothing is dropped during a run."""
    return Settings(
        client_id=1,
        api_url="http://127.0.0.1:9",
        queue_size=5_000_000,
        queue_bytes=1 << 33,
        flush_timeout=0.1,
    )


def us(seconds: float) -> str:
    return f"{seconds * 1e6:7.2f} µs"


def signup_times(port: int, requests: int) -> dict[str, list[float]]:
    """Seconds per POST to ``/plain`` and ``/decorated`` (``requests`` each, interleaved, one
    keep-alive connection), after a landing on ``/plain?ref=slow_aff`` so that AFFY knows
    the click the registrations refer to. Both endpoints must answer 201."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/plain?ref=slow_aff", headers={"User-Agent": CHROME})
    landing = conn.getresponse()
    landing.read()
    cookie = "; ".join(
        v.split(";", 1)[0] for k, v in landing.getheaders() if k.lower() == "set-cookie"
    )
    times: dict[str, list[float]] = {"/plain": [], "/decorated": []}
    for i in range(requests * 2):
        path = "/plain" if i % 2 else "/decorated"
        t0 = time.perf_counter()
        conn.request("POST", path, body=b"", headers={"Cookie": cookie, "User-Agent": CHROME})
        response = conn.getresponse()
        response.read()
        times[path].append(time.perf_counter() - t0)
        assert response.status == 201
    conn.close()
    return times


def signup_summary(times: dict[str, list[float]]) -> str:
    """The medians of :func:`signup_times`, the decorated one's p95 and the difference."""
    plain_ms = statistics.median(times["/plain"]) * 1000
    deco_ms = statistics.median(times["/decorated"]) * 1000
    p95 = sorted(times["/decorated"])[int(len(times["/decorated"]) * 0.95)] * 1000
    return (
        f"undecorated signup median {plain_ms:.3f} ms; decorated median {deco_ms:.3f} ms "
        f"(p95 {p95:.3f} ms); difference {deco_ms - plain_ms:+.3f} ms"
    )
