"""``affy relay``: deliver the outbox's events to AFFY, on its own, until SIGTERM/SIGINT.

For a relay deployment next to the web tier (or a web tier that should not send): the
same delivery a web process runs (claims with a lease, visit order, one
``Idempotency-Key`` per event), without the web app. On SIGTERM or SIGINT it stops
claiming, finishes what it holds within ``AFFY_FLUSH_TIMEOUT``, gives the rest back to
the outbox, and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from types import FrameType

from .._errors import AffyConfigError
from ..delivery import make_backend
from ..delivery.outbox import OutboxError, open_outbox, outbox_location
from .config import settings_from
from .output import EXIT_OK, FIX_CLIENT_ID, Failure, config_failure, report_failure

__all__ = ["run"]

#: Seconds between two looks at the stop flag (a signal handler only sets it).
_TICK = 0.1
#: Seconds between two progress lines with --verbose.
_REPORT_EVERY = 30.0

_FIX_URL = (
    "export AFFY_OUTBOX_URL=postgresql://user:password@host/db (the database your web "
    "processes write to), or AFFY_OUTBOX_URL=sqlite:////path/shared.db on one host"
)


def run(args: argparse.Namespace) -> int:
    """Relay until a signal; 0 after a clean stop, 1 when it cannot start."""
    try:
        settings = settings_from(args).replace(delivery="thread")
    except AffyConfigError as exc:
        return report_failure(config_failure(exc), False)
    location = outbox_location(settings)
    if location is None:
        return report_failure(Failure("affy relay needs an outbox to relay", _FIX_URL), False)
    if settings.client_id is None:
        return report_failure(Failure("AFFY_CLIENT_ID is not set", FIX_CLIENT_ID), False)
    if not settings.enabled:
        return report_failure(Failure("AFFY_ENABLED is off", "unset AFFY_ENABLED"), False)
    try:  # a wrong URL or a server down is a start-up error, said once, plainly
        probe = open_outbox(settings)
    except OutboxError as exc:
        return report_failure(
            Failure(f"cannot open the outbox: {exc}", "check AFFY_OUTBOX_URL and the server"),
            False,
        )
    if probe is not None:
        probe.close()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    # A plain flag: the handler runs in the main thread, possibly inside a wait on a
    # lock it would need (threading.Event.set from a handler can deadlock its wait).
    stop: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    backend = make_backend(settings, outbox_lease=args.lease)
    try:
        backend.start()  # claims at once: rows wait for no new traffic
        print(f"affy relay: relaying {location} to {settings.api_url}", file=sys.stderr)
        sys.stderr.flush()
        next_report = time.monotonic() + _REPORT_EVERY
        while not stop:
            time.sleep(_TICK)
            if args.verbose and time.monotonic() >= next_report:
                _report(backend.stats())
                next_report = time.monotonic() + _REPORT_EVERY
    finally:
        began = time.monotonic()
        backend.close(settings.flush_timeout, final=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    stats = backend.stats()
    print(
        f"affy relay: stopped in {time.monotonic() - began:.1f}s; sent {stats['sent']},"
        f" failed {stats['failed']}, dropped {stats['dropped']}",
        file=sys.stderr,
    )
    return EXIT_OK


def _report(stats: dict[str, int]) -> None:
    keys = ("sent", "retried", "failed", "dropped", "queued", "in_flight", "spooled")
    print("affy relay: " + ", ".join(f"{k} {stats[k]}" for k in keys), file=sys.stderr)
