"""Client overhead and sandbox capacity, each compared with a baseline in the same run.

1. ``AffyClient.send_event`` vs a bare ``httpx.Client.post`` of the same bytes, over an
   in-memory transport (no network): what the client adds per call.
2. The same two over real HTTP to the sandbox on 127.0.0.1, sequential and 8 threads.

Run: ``.venv/bin/python bench/bench_client.py [--calls N]``
"""

from __future__ import annotations

import argparse
import platform
import sys
import threading
import time
from collections.abc import Callable
from decimal import Decimal

import httpx

from affy_middleware import AffyClient
from affy_middleware._wire import Event, payment_body
from affy_middleware.sandbox import SandboxServer

REPEATS = 3


def events(count: int, tag: str) -> list[Event]:
    return [
        Event("payment", payment_body(1, session_id=f"{tag}-{i}", lead_value=Decimal("9.99")))
        for i in range(count)
    ]


def rate(run: Callable[[], int]) -> float:
    """Best of REPEATS runs, in calls per second."""
    rates = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        done = run()
        rates.append(done / (time.perf_counter() - started))
    return max(rates)


def in_threads(work: Callable[[list[Event]], None], batch: list[Event], threads: int) -> int:
    parts = [batch[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=work, args=(part,)) for part in parts]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    return len(batch)


def compare(name: str, baseline: float, ours: float) -> None:
    print(
        f"{name:44s} httpx {baseline:9.0f}/s   AffyClient {ours:9.0f}/s   "
        f"ratio {ours / baseline:5.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args(argv)
    n = args.calls
    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"{n} calls per run, best of {REPEATS}"
    )

    ok = httpx.Response(201, json={"success": True, "leadId": 1})
    transport = httpx.MockTransport(lambda request: ok)
    with (
        AffyClient(
            client_id=1, api_key="bench-key", api_url="https://api.affy.test", transport=transport
        ) as affy,
        httpx.Client(
            base_url="https://api.affy.test",
            transport=transport,
            headers={"Authorization": "Bearer bench-key"},
        ) as raw,
    ):
        batch = events(n, "mem")

        def bare() -> int:
            for event in batch:
                raw.post(
                    event.path,
                    content=event.encoded(),
                    headers={"Idempotency-Key": event.event_id, "Content-Type": "application/json"},
                ).json()
            return n

        def client() -> int:
            for event in batch:
                affy.send_event(event)
            return n

        compare("in-memory transport, sequential", rate(bare), rate(client))

    with SandboxServer(port=0, api_key="bench-key") as sb:
        with (
            AffyClient(sb.settings()) as affy,
            httpx.Client(base_url=sb.url, headers={"Authorization": "Bearer bench-key"}) as raw,
        ):

            def post_raw(part: list[Event]) -> None:
                for event in part:
                    raw.post(
                        event.path,
                        content=event.encoded(),
                        headers={
                            "Idempotency-Key": event.event_id,
                            "Content-Type": "application/json",
                        },
                    ).raise_for_status()

            def post_client(part: list[Event]) -> None:
                for event in part:
                    affy.send_event(event)

            small = max(n // 4, 50)
            seq_raw = rate(lambda: (post_raw(events(small, "a")), small)[1])
            seq_ours = rate(lambda: (post_client(events(small, "b")), small)[1])
            compare("sandbox over HTTP, sequential", seq_raw, seq_ours)
            par_raw = rate(lambda: in_threads(post_raw, events(small, "c"), 8))
            par_ours = rate(lambda: in_threads(post_client, events(small, "d"), 8))
            compare("sandbox over HTTP, 8 threads", par_raw, par_ours)
        statuses = [r["status"] for r in sb.requests()]
        assert set(statuses) == {201}, set(statuses)
        print(f"sandbox recorded {len(sb.events())} events, {sb.duplicates()} duplicates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
