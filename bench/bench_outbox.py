"""Outbox benchmarks: what an outbox adds to the request, and how fast relays drain it.

    .venv/bin/python bench/bench_outbox.py                  # everything (~3 minutes)
    .venv/bin/python bench/bench_outbox.py enqueue relays lean cpu backlog
    AFFY_BENCH_BACKLOG=20000 bench/bench_outbox.py backlog  # a smaller backlog
    AFFY_BENCH_OUTAGE=1000000 bench/bench_outbox.py outage  # a web process through an outage
    AFFY_BENCH_PG_URL=postgresql://... bench/bench_outbox.py  # an existing server

Without ``AFFY_BENCH_PG_URL`` a throwaway PostgreSQL is started from Debian's binaries
(as the test suite does). The sandbox runs in its own process; every figure is printed
next to its baseline from the same run. ``lean`` measures the relays against a lean AFFY
stand-in (``_lean_affy.py``: a 201 after the latency, nothing stored) instead of the
sandbox, which on a small machine competes with the relays for the CPU.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from bench_delivery import (
    Sandbox,
    blocked_sender,
    click,
    per_call_ns,
    sandbox_process,
    served,
    us,
)

from affy_middleware._wire import Event
from affy_middleware.delivery import make_backend
from affy_middleware.delivery.outbox.postgres.store import PostgresOutbox

ROOT = Path(__file__).resolve().parent.parent
AFFY = Path(sys.executable).parent / "affy"
#: How to run ``affy relay``: the venv's script, else the module.
AFFY_COMMAND = [str(AFFY)] if AFFY.exists() else [sys.executable, "-m", "affy_middleware.cli"]


def relay_env(url: str, api_url: str, **extra: str) -> dict[str, str]:
    """The environment of an ``affy relay`` process: this one's without AFFY_*, then these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFFY_")}
    env.update(
        AFFY_OUTBOX_URL=url, AFFY_CLIENT_ID="1", AFFY_API_KEY="bench-key", AFFY_API_URL=api_url
    )
    env.update(extra)
    return env


@contextmanager
def postgres() -> Iterator[str]:
    given = os.environ.get("AFFY_BENCH_PG_URL")
    if given:
        yield given
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from _postgres import PostgresServer, find_binaries

    bindir = find_binaries()
    if bindir is None:
        raise SystemExit("no PostgreSQL: set AFFY_BENCH_PG_URL or apt-get install postgresql")
    server = PostgresServer(bindir)
    server.start()
    try:
        yield server.url()
    finally:
        server.stop()


def fresh(url: str) -> None:
    outbox = PostgresOutbox(url)
    outbox.run(lambda conn: conn.execute("TRUNCATE affy_outbox, affy_outbox_dead"))
    outbox.close()


# -- 1. enqueue cost ---------------------------------------------------------------------------


def bench_enqueue(sb: Sandbox, url: str) -> None:
    print("\n## enqueue cost: one submit() (per call, median / p99, µs)")
    n = 3000
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        stores = {
            "memory": {},
            "SQLite outbox": {"spool_path": os.path.join(tmp, "spool.sqlite")},
            "PostgreSQL outbox": {"outbox_url": url},
        }
        for offset, (name, extra) in enumerate(stores.items()):
            fresh(url)
            send, gate = blocked_sender()
            backend = make_backend(sb.settings(queue_size=10_000, **extra), send=send)
            backend.submit(click(-1 - offset))  # opens the store
            events = [click(offset * n + i) for i in range(n)]
            results[name] = per_call_ns(backend.submit, events)
            gate.set()
            backend.close(0.5)
    base = us(results["memory"])
    for name, values in results.items():
        print(
            f"{name:<20} {us(values):8.1f} / {us(values, 0.99):8.1f}"
            f"   +{us(values) - base:7.1f} µs over memory"
        )
    pg = us(results["PostgreSQL outbox"])
    print(f"target: PostgreSQL median <= 500 µs on loopback: {'PASS' if pg <= 500 else 'FAIL'}")


# -- 2. relay throughput -----------------------------------------------------------------------


def drain(sb: Sandbox, url: str, relays: int, rows: int, in_flight: int) -> tuple[float, float]:
    """Seconds for ``relays`` affy relay processes to deliver ``rows`` waiting rows: from
    their start, and from the first event AFFY received (start-up left out)."""
    fresh(url)
    sb.reset()
    sb.faults(latency=0.05)
    outbox = PostgresOutbox(url)
    for i in range(rows):
        outbox.put(click(10_000_000 + i), claimed=False)
    outbox.close()
    env = relay_env(
        url, sb.url, AFFY_MAX_IN_FLIGHT=str(in_flight), AFFY_QUEUE_SIZE=str(4 * in_flight)
    )
    started = time.monotonic()
    procs = [
        subprocess.Popen([*AFFY_COMMAND, "relay"], env=env, stderr=subprocess.DEVNULL)
        for _ in range(relays)
    ]
    try:
        deadline = started + 120
        first = None
        while (seen := sb.stats().get("events", 0)) < rows and time.monotonic() < deadline:
            if first is None and seen:
                first = (time.monotonic(), seen)
            time.sleep(0.02)
        elapsed = time.monotonic() - started
        first = first or (time.monotonic(), rows)
        steady = (time.monotonic() - first[0]) * rows / max(1, rows - first[1])
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(30)
    sb.faults(latency=0.0)
    return elapsed, steady


def lean_affy_process() -> AbstractContextManager[Sandbox]:
    script = Path(__file__).resolve().parent / "_lean_affy.py"
    return served([sys.executable, str(script), "--port", "0"])


def bench_lean(sb: Sandbox, url: str) -> None:
    with lean_affy_process() as lean:
        bench_relays(lean, url, against="a lean AFFY stand-in")


def bench_relays(sb: Sandbox, url: str, against: str = "the sandbox") -> None:
    in_flight, latency = 8, 0.05
    print(
        f"\n## relay throughput, {against} at +{latency * 1000:.0f} ms,"
        f" {in_flight} in flight each"
    )
    rates = {}
    for relays in (1, 2, 4):
        rows = 400 * relays
        seconds, steady = drain(sb, url, relays, rows, in_flight)
        rates[relays] = rows / seconds
        ideal = relays * in_flight / latency
        print(
            f"{relays} relay(s): {rows} rows in {seconds:5.1f} s = {rates[relays]:6.0f}/s;"
            f" ideal {ideal:4.0f}/s, ratio {rates[relays] / ideal:.2f}"
            f" (includes process start-up); from the first event {rows / steady:4.0f}/s,"
            f" ratio {rows / steady / ideal:.2f}"
        )
    print(f"2 relays / 1 relay: {rates[2] / rates[1]:.2f} (target >= 1.7)")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used (``/proc``)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_cpu(sb: Sandbox, url: str) -> None:
    """One relay draining rows into the lean AFFY without latency: its rate and CPU time
    per event (start-up included), what the relay's own work costs."""
    rows = 3000
    print(f"\n## one relay, {rows} rows, a lean AFFY stand-in at +0 ms: CPU per event")
    with lean_affy_process() as lean:
        for attempt in range(2):
            fresh(url)
            lean.reset()
            outbox = PostgresOutbox(url)
            for i in range(rows):
                outbox.put(click(50_000_000 + attempt * rows + i), claimed=False)
            outbox.close()
            env = relay_env(url, lean.url)
            started = time.monotonic()
            proc = subprocess.Popen([*AFFY_COMMAND, "relay"], env=env, stderr=subprocess.DEVNULL)
            try:
                while lean.stats()["events"] < rows and time.monotonic() < started + 120:
                    time.sleep(0.05)
                elapsed, cpu = time.monotonic() - started, cpu_seconds(proc.pid)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
            print(
                f"run {attempt + 1}: {rows / elapsed:.0f} events/s;"
                f" relay CPU {cpu:.2f} s = {cpu / rows * 1e6:.0f} µs per event"
            )


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def bench_backlog(sb: Sandbox, url: str) -> None:
    rows = int(os.environ.get("AFFY_BENCH_BACKLOG", "100000"))
    print(f"\n## backlog drain: {rows} rows left by an outage, 2 relays, AFFY without delay")
    fresh(url)
    sb.reset()
    outbox = PostgresOutbox(url)
    batch = 5000
    for start in range(0, rows, batch):  # one COPY per batch: filling is not the point
        chunk = [click(20_000_000 + i) for i in range(start, min(rows, start + batch))]

        def copy(conn: Any, chunk: list[Event] = chunk) -> None:
            with conn.cursor().copy(
                "COPY affy_outbox (event_id, order_key, kind, record, created_at) FROM STDIN"
            ) as out:
                for e in chunk:
                    out.write_row((e.event_id, e.order_key, e.kind, e.to_record(), e.created_at))

        outbox.run(copy)
    outbox.close()
    env = relay_env(url, sb.url)
    started = time.monotonic()
    procs = [
        subprocess.Popen([*AFFY_COMMAND, "relay"], env=env, stderr=subprocess.DEVNULL)
        for _ in range(2)
    ]
    peaks = [0.0, 0.0]
    try:
        deadline = started + 900
        while sb.stats().get("events", 0) < rows and time.monotonic() < deadline:
            time.sleep(0.5)
            peaks = [max(p, peak_rss_mb(proc.pid)) for p, proc in zip(peaks, procs, strict=True)]
        elapsed = time.monotonic() - started
        delivered = sb.stats().get("events", 0)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(30)
    print(
        f"{delivered} of {rows} delivered in {elapsed:.0f} s = {delivered / elapsed:.0f}/s;"
        f" relay peak RSS {peaks[0]:.0f} MB and {peaks[1]:.0f} MB"
    )


def self_rss_mb() -> float:
    return peak_rss_mb(os.getpid())


def bench_outage(sb: Sandbox, url: str) -> None:
    """A web process keeps reporting while AFFY is down: each event written to the
    PostgreSQL outbox on submit, memory bounded by AFFY_QUEUE_SIZE however long the
    outage, every row kept; then AFFY comes back and the same process drains it."""
    events = int(os.environ.get("AFFY_BENCH_OUTAGE", "100000"))
    queue_size = 10_000
    print(f"\n## outage: {events} events submitted while AFFY answers 503, then drained")
    fresh(url)
    sb.reset()
    sb.faults(error_rate=1.0)
    backend = make_backend(sb.settings(outbox_url=url, queue_size=queue_size))
    before = self_rss_mb()
    started = time.monotonic()
    refused = sum(not backend.submit(click(30_000_000 + i)) for i in range(events))
    submitted = time.monotonic() - started
    outbox = PostgresOutbox(url)
    kept = outbox.count()
    peak = self_rss_mb()
    sb.faults()  # AFFY is back
    drain_start = time.monotonic()
    drained = backend.flush(3600)
    drain = time.monotonic() - drain_start
    delivered = sb.stats().get("events", 0)
    left = outbox.count()
    outbox.close()
    backend.close(10, final=True)
    print(
        f"submit: {events} in {submitted:.0f} s ({submitted / events * 1e6:.0f} µs each),"
        f" {refused} refused; rows kept {kept} of {events}; peak RSS {peak:.0f} MB"
        f" (+{peak - before:.0f} MB; memory queue bound {queue_size} events)"
    )
    print(
        f"drain: {delivered} delivered in {drain:.0f} s = {delivered / max(drain, 1e-9):.0f}/s,"
        f" flush {'done' if drained else 'timed out'}, {left} rows left"
    )


SECTIONS = {
    "enqueue": bench_enqueue,
    "relays": bench_relays,
    "lean": bench_lean,
    "cpu": bench_cpu,
    "backlog": bench_backlog,
    "outage": bench_outage,
}


def main(argv: list[str]) -> None:
    if any(arg in ("-h", "--help") for arg in argv) or not set(argv) <= set(SECTIONS):
        print(__doc__.strip())
        raise SystemExit(0 if not set(argv) - {"-h", "--help"} - set(SECTIONS) else 2)
    chosen = argv or list(SECTIONS)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    with postgres() as url, sandbox_process() as sb:
        for name in chosen:
            SECTIONS[name](sb, url)
    print(json.dumps({"done": chosen}))


if __name__ == "__main__":
    main(sys.argv[1:])
