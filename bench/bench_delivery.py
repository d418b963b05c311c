"""Delivery benchmarks: enqueue cost, throughput, memory under an outage, the request's view.

    .venv/bin/python bench/bench_delivery.py            # everything (~1-2 minutes)
    .venv/bin/python bench/bench_delivery.py enqueue throughput memory request

The sandbox runs in its own process (``python -m affy_middleware.sandbox``) so that it does
not share this process's GIL; faults are switched over its admin API. Every figure is
printed next to a baseline measured in the same run, with the ratio.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from decimal import Decimal
from queue import Queue
from typing import Any

import httpx

from affy_middleware._settings import Settings
from affy_middleware._wire import API_PATHS, Event, click_body, lead_value, payment_body
from affy_middleware.delivery import make_backend

API_KEY = "bench-key"


# -- the sandbox, in a subprocess --------------------------------------------------------


class Sandbox:
    def __init__(self, url: str) -> None:
        self.url = url
        self.admin = httpx.Client(base_url=url, timeout=30)

    def faults(self, **faults: Any) -> None:
        self.admin.post("/_sandbox/faults", json=faults).raise_for_status()

    def reset(self) -> None:
        self.admin.post("/_sandbox/reset").raise_for_status()

    def events(self) -> list[dict[str, Any]]:
        return list(self.admin.get("/_sandbox/events").json()["events"])

    def stats(self) -> dict[str, int]:
        return dict(self.admin.get("/_sandbox/stats").json())

    def settings(self, **overrides: Any) -> Settings:
        return Settings(client_id=1, api_key=API_KEY, api_url=self.url, **overrides)


@contextmanager
def served(command: list[str]) -> Iterator[Sandbox]:
    """A server process that prints its ``http://`` URL on its first line (the sandbox,
    or bench/_lean_affy.py), stopped at the end of the block."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = next(word for word in line.split() if word.startswith("http://"))
        yield Sandbox(url.rstrip("/"))
    finally:
        proc.terminate()
        proc.wait(10)


def sandbox_process() -> AbstractContextManager[Sandbox]:
    return served(
        [sys.executable, "-m", "affy_middleware.sandbox", "--port", "0", "--api-key", API_KEY]
    )


# -- helpers ---------------------------------------------------------------------------------


def click(i: int) -> Event:
    session = f"session-{i:08d}"
    body = click_body(
        1,
        affiliate_reference="partner-42",
        click_id=f"click-{i:08d}",
        session_id=session,
        clicked_url=f"https://shop.example/?ref=partner-42&i={i}",
        user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    )
    return Event(kind="click", body=body, order_key=session)


def per_call_ns(call: Callable[[Any], object], args: list[Any]) -> list[int]:
    """Time each call separately (perf_counter_ns around it)."""
    timer = time.perf_counter_ns
    out = []
    gc.disable()
    try:
        for arg in args:
            start = timer()
            call(arg)
            out.append(timer() - start)
    finally:
        gc.enable()
    return out


def us(ns_values: list[int], q: float = 0.5) -> float:
    ordered = sorted(ns_values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def blocked_sender() -> tuple[Callable[[Event], object], threading.Event]:
    gate = threading.Event()

    def send(event: Event) -> object:
        gate.wait(60)
        return {}

    return send, gate


# -- 1. enqueue cost -------------------------------------------------------------------------


def bench_enqueue(sb: Sandbox) -> None:
    print("\n## enqueue cost (per call, median / p99, µs)")
    n = 50_000
    events = [click(i) for i in range(n)]
    timer_only = per_call_ns(lambda e: None, events)
    dq: deque[Event] = deque()
    q: Queue[Event] = Queue()
    base_deque = per_call_ns(dq.append, events)
    base_queue = per_call_ns(q.put_nowait, events)
    print(f"timer overhead alone        {us(timer_only):7.2f} / {us(timer_only, 0.99):7.2f}")
    print(f"baseline deque.append       {us(base_deque):7.2f} / {us(base_deque, 0.99):7.2f}")
    print(f"baseline Queue.put_nowait   {us(base_queue):7.2f} / {us(base_queue, 0.99):7.2f}")

    send, gate = blocked_sender()
    d = make_backend(sb.settings(queue_size=n + 10, queue_bytes=1 << 30), send=send)
    idle = per_call_ns(d.submit, events)
    gate.set()
    d.flush(60)
    d.close(0.5)
    print(
        f"submit (memory)             {us(idle):7.2f} / {us(idle, 0.99):7.2f}"
        f"   ratio to Queue.put_nowait {us(idle) / us(base_queue):.2f}"
    )

    sb.reset()
    live_events = [click(i) for i in range(n, n + 5000)]
    d = make_backend(sb.settings(queue_size=n + 10, queue_bytes=1 << 30))
    live = per_call_ns(d.submit, live_events)
    d.flush(60)
    d.close(1)
    print(
        f"  ... while 8 senders post  {us(live):7.2f} / {us(live, 0.99):7.2f}"
        "   (GIL shared with the sender threads)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        send, gate = blocked_sender()
        spool_events = [click(i) for i in range(2 * n, 2 * n + 5000)]
        d = make_backend(
            sb.settings(spool_path=os.path.join(tmp, "spool.sqlite"), queue_size=10_000),
            send=send,
        )
        d.submit(click(-1))  # opens the file
        spooled = per_call_ns(d.submit, spool_events)
        gate.set()
        d.flush(60)
        d.close(0.5)
    print(
        f"submit (spool)              {us(spooled):7.2f} / {us(spooled, 0.99):7.2f}"
        "   (SQLite WAL insert + commit, synchronous=NORMAL)"
    )
    print(
        f"targets: memory median <= 5 µs: {'PASS' if us(idle) <= 5 else 'FAIL'}; "
        f"spool median <= 150 µs: {'PASS' if us(spooled) <= 150 else 'FAIL'}"
    )


# -- 2. throughput -----------------------------------------------------------------------------


def visit_events(visits: int, steps: int) -> list[Event]:
    out = []
    for step in range(1, steps + 1):
        for v in range(visits):
            session = f"visit-{v:06d}-xyz"
            body = payment_body(1, session_id=session, lead_value=lead_value(step))
            out.append(Event(kind="payment", body=body, order_key=session))
    return out


def order_intact(events: list[dict[str, Any]]) -> bool:
    last: dict[str, Decimal] = {}
    for e in events:  # oldest first
        value = Decimal(str(e["body"]["leadValue"]))
        if value <= last.get(e["body"]["sessionId"], Decimal(-1)):
            return False
        last[e["body"]["sessionId"]] = value
    return True


def bench_throughput(sb: Sandbox) -> None:
    print("\n## throughput")
    latency, in_flight = 0.05, 8
    sb.reset()
    sb.faults(latency=latency)
    events = visit_events(100, 4)
    d = make_backend(sb.settings(max_in_flight=in_flight))
    start = time.perf_counter()
    for e in events:
        d.submit(e)
    ok = d.flush(120)
    elapsed = time.perf_counter() - start
    d.close(1)
    got = sb.events()
    rate, ideal = len(events) / elapsed, in_flight / latency
    print(
        f"{latency * 1000:.0f} ms latency, max_in_flight={in_flight}: {len(events)} events in "
        f"{elapsed:.2f} s = {rate:.0f}/s; ideal {ideal:.0f}/s; ratio {rate / ideal:.2f} "
        f"(target >= 0.8: {'PASS' if rate >= 0.8 * ideal else 'FAIL'}); delivered "
        f"{len(got)}/{len(events)}, flushed={ok}, per-visit order intact={order_intact(got)}"
    )

    sb.reset()
    sb.faults()
    n = 3000
    bare_events = [click(i) for i in range(n)]
    with httpx.Client(base_url=sb.url, headers={"Authorization": f"Bearer {API_KEY}"}) as c:
        start = time.perf_counter()
        for e in bare_events:
            c.post(
                API_PATHS[e.kind],
                content=e.encoded(),
                headers={"Idempotency-Key": e.event_id, "Content-Type": "application/json"},
            )
        bare = n / (time.perf_counter() - start)
    sb.reset()
    ours_events = [click(i) for i in range(n, 2 * n)]
    d = make_backend(sb.settings(max_in_flight=in_flight))
    start = time.perf_counter()
    for e in ours_events:
        d.submit(e)
    ok = d.flush(120)
    ours = n / (time.perf_counter() - start)
    d.close(1)
    delivered = sb.stats()["events"]
    print(
        f"no added latency: bare keep-alive httpx loop {bare:.0f}/s; thread backend {ours:.0f}/s; "
        f"ratio {ours / bare:.2f} (target >= 0.8: {'PASS' if ours >= 0.8 * bare else 'FAIL'}); "
        f"delivered {delivered}/{n}, flushed={ok}"
    )


# -- 3. memory during an outage ------------------------------------------------------------------


def bench_memory(sb: Sandbox) -> None:
    print("\n## memory: 1,000,000 events offered while AFFY is down")
    sb.reset()
    sb.faults(outage_seconds=3600)
    settings = sb.settings()  # the defaults: 10,000 events / 16 MiB
    gc.collect()
    before = rss_mb()
    d = make_backend(settings)
    samples: list[int] = []
    peak = before
    n = 1_000_000
    timer = time.perf_counter_ns
    start = time.perf_counter()
    for i in range(n):
        e = click(i)
        if i % 100 == 0:
            t = timer()
            d.submit(e)
            samples.append(timer() - t)
        else:
            d.submit(e)
        if i % 100_000 == 0:
            peak = max(peak, rss_mb())
    elapsed = time.perf_counter() - start
    peak = max(peak, rss_mb())
    stats = d.stats()
    print(
        f"RSS before {before:.1f} MB, peak {peak:.1f} MB, growth {peak - before:.1f} MB "
        f"(queue bound: {settings.queue_size} events / {settings.queue_bytes / 2**20:.0f} MiB "
        "of estimated size)"
    )
    print(
        f"offered {n} in {elapsed:.1f} s ({n / elapsed:,.0f}/s incl. building each event); "
        f"accepted {stats['enqueued']}, dropped_queue_full {stats['dropped_queue_full']}, "
        f"requests made {sb.stats()['requests']} (the pipeline is paused)"
    )
    print(
        f"enqueue during the storm: median {us(samples):.2f} µs, p99 {us(samples, 0.99):.2f} µs, "
        f"max {max(samples) / 1000:.0f} µs"
    )
    d.close(0.2)

    # The byte bound alone: a count bound too large to matter, the default 16 MiB.
    settings = sb.settings(queue_size=1_000_000)
    del d
    gc.collect()
    d = make_backend(settings)
    for i in range(300_000):
        d.submit(click(i))
    stats = d.stats()
    print(
        f"byte bound only (queue_size=1e6, queue_bytes=16 MiB): 300,000 offered, accepted "
        f"{stats['enqueued']}, RSS {rss_mb():.1f} MB, {rss_mb() - before:.1f} MB above the "
        "section's start (the first queue's memory, freed, is reused)"
    )
    d.close(0.2)


# -- 4. the request's view -------------------------------------------------------------------------


def bench_request_view(sb: Sandbox) -> None:
    print("\n## the request thread's cost per event, AFFY at 200 ms latency")
    sb.reset()
    sb.faults(latency=0.2)
    naive = []
    for i in range(8):  # what the AFFY docs show: one inline POST per event
        e = click(i)
        start = time.perf_counter_ns()
        httpx.post(
            sb.url + API_PATHS["click"], json=e.body, headers={"Authorization": f"Bearer {API_KEY}"}
        )
        naive.append(time.perf_counter_ns() - start)
    d = make_backend(sb.settings())
    ours = per_call_ns(d.submit, [click(i) for i in range(100, 1100)])
    d.flush(60)
    d.close(1)
    print(
        f"inline httpx.post: median {us(naive) / 1000:.1f} ms; submit: median "
        f"{us(ours):.2f} µs (p99 {us(ours, 0.99):.2f} µs); the request spends "
        f"{us(naive) / us(ours):,.0f}x less time"
    )


SECTIONS = {
    "enqueue": bench_enqueue,
    "throughput": bench_throughput,
    "memory": bench_memory,
    "request": bench_request_view,
}


def main(argv: list[str]) -> None:
    if any(arg in ("-h", "--help") for arg in argv) or not set(argv) <= set(SECTIONS):
        print(__doc__.strip())
        print(f"\nsections: {' '.join(SECTIONS)}")
        raise SystemExit(0 if not set(argv) - {"-h", "--help"} - set(SECTIONS) else 2)
    chosen = argv or list(SECTIONS)
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    with sandbox_process() as sb:
        for name in chosen:
            SECTIONS[name](sb)
    print(json.dumps({"done": chosen}))


if __name__ == "__main__":
    main(sys.argv[1:])
