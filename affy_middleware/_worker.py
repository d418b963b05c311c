"""The Dispatcher: a bounded in-memory queue drained by a small pool of sender threads.

The request thread only runs :meth:`Dispatcher.enqueue` (a few microseconds: one short lock,
a deque append). Up to ``max_in_flight`` daemon threads, started on demand, share one
keep-alive HTTP client; events with the same ``order_key`` (one visit) go strictly one after
another, other events in parallel. Retries and the pipeline-wide pause live in ``_retry``;
the optional SQLite outbox in ``_spool``.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sqlite3
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

# Imported here, not lazily in a sender thread: a fork (gunicorn --preload) that lands
# while a thread is half-way through an import leaves the child a half-initialised module.
import httpcore  # noqa: F401  (httpx imports it lazily, on the first client)

from ._errors import AffyAPIError, AffyNetworkError
from ._retry import Breaker, RetryPolicy, is_retryable, retry_after_of
from ._settings import Settings
from ._spool import DEFAULT_LEASE, Spool
from ._wire import Event
from .client import AffyClient

__all__ = ["Dispatcher", "Sender", "COUNTERS", "capture_stack"]

logger = logging.getLogger("affy_middleware")

Sender = Callable[[Event], object]

#: Counters reported by ``stats()`` (plus the gauges queued, in_flight, spooled, dropped).
COUNTERS = (
    "enqueued",
    "sent",
    "retried",
    "failed",
    "dropped_queue_full",
    "dropped_rejected",
    "dropped_expired",
    "dropped_shutdown",
    "dropped_unsent",
    "spool_errors",
    "handed_over",
    "pauses",
)
#: Per-event overhead in the byte estimate: the Event, its dict, its id and timestamps,
#: the queue entry (measured: 10 000 queued clicks take ~9 MB of RSS).
EVENT_OVERHEAD = 600
#: Per-field overhead: a str object's header (shared dict keys are not counted).
FIELD_OVERHEAD = 56
#: Seconds between two log lines about the same kind of drop.
LOG_INTERVAL = 60.0
#: Seconds an idle sender thread waits before looking around again.
IDLE_WAIT = 5.0
#: Seconds between two looks at the spool for rows to take over (dead owners, overflow).
CLAIM_INTERVAL = 1.0

#: Longest a fork waits for this process's HTTP calls to AFFY to finish (seconds).
FORK_WAIT = 1.0

#: Events are appended here instead of being sent while ``capture()`` is active.
capture_stack: list[list[Event]] = []
#: Objects inherited from a parent process: never closed in the child (their sockets and
#: SQLite locks belong to the parent), only kept alive.
_inherited: list[object] = []
_uwsgi_checked = False


def estimate_size(event: Event) -> int:
    """A cheap, slightly pessimistic estimate of an event's memory, without JSON."""
    size = EVENT_OVERHEAD
    for value in event.body.values():
        size += FIELD_OVERHEAD + len(value) if type(value) is str else 32
    return size


def _warn_if_uwsgi_without_threads() -> None:
    global _uwsgi_checked
    if _uwsgi_checked:
        return
    _uwsgi_checked = True
    uwsgi = sys.modules.get("uwsgi")
    if uwsgi is None and "uwsgi" in sys.builtin_module_names:  # uWSGI embeds it built in
        with contextlib.suppress(ImportError):
            uwsgi = importlib.import_module("uwsgi")
    if uwsgi is None:
        return
    opt = getattr(uwsgi, "opt", {}) or {}

    def on(name: str) -> bool:
        value = opt.get(name, opt.get(name.encode()))
        return value not in (None, False, b"", "", 0, b"0", "0", b"false", "false")

    if not (on("enable-threads") or on("threads")):
        logger.warning(
            "affy_middleware: uWSGI runs without threads (--enable-threads is off), so the "
            "background delivery thread never runs and events stay queued. Start uWSGI with "
            "--enable-threads, or set AFFY_DELIVERY=sync."
        )


def _failing(error: Exception) -> Sender:
    def send(event: Event) -> object:
        raise error

    return send


class _Item:
    __slots__ = ("event", "size", "spooled", "attempts")

    def __init__(self, event: Event, size: int, spooled: bool) -> None:
        self.event = event
        self.size = size
        self.spooled = spooled
        self.attempts = 0


class _Generation:
    """What one set of threads shares; replaced after fork and after shutdown."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.wake_keeper = threading.Event()
        self.threads: list[threading.Thread] = []


class Dispatcher:
    """Delivers events for one ``Settings``. ``enqueue`` never blocks and never raises.

    ``send`` replaces the HTTP call (a callable taking an ``Event`` and raising the
    ``AffyAPIError`` family), ``retry_policy`` the backoff parameters; both are for tests
    and benchmarks::

        dispatcher = Dispatcher(Settings(client_id=42))
        dispatcher.enqueue(event)      # True: accepted for delivery
        dispatcher.flush(timeout=2.0)  # True: everything accepted was delivered
    """

    def __init__(
        self,
        settings: Settings,
        *,
        send: Sender | None = None,
        retry_policy: RetryPolicy | None = None,
        spool_lease: float = DEFAULT_LEASE,
    ) -> None:
        self.settings = settings
        self._send_override = send
        self.policy = retry_policy or RetryPolicy()
        self._spool_lease = spool_lease
        self._closed = False  # set by the at-exit shutdown: accept nothing afterwards
        self._last_log: dict[str, float] = {}
        self._reasons_logged: set[tuple[Any, ...]] = set()
        self._reset()

    # -- state -------------------------------------------------------------------------

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._refill_lock = threading.Lock()
        self._client_lock = threading.Lock()
        self._http_idle = threading.Condition(self._lock)  # fork waits for HTTP calls
        self._http_active = 0  # threads inside an HTTP call (or creating the client)
        self._forking = False
        self._work = threading.Condition(self._lock)  # idle senders
        self._done = threading.Condition(self._lock)  # flush() waiters
        self._gate = threading.Condition(self._lock)  # senders held by a pause
        self._ready: deque[_Item] = deque()
        self._busy: dict[str, deque[_Item]] = {}  # order keys being sent -> their backlog
        self._count = 0  # items in memory not finished (ready, backlog and in flight)
        self._bytes = 0
        self._in_flight = 0
        self._senders = 0
        self._idle = 0
        self._held: dict[str, _Item] = {}  # items taken by senders, by event id
        self._overflow = False  # newer events wait in the spool, not in memory
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._breaker = Breaker(self.policy)
        self._gen = _Generation()
        self._keeper_started = False
        self._client: Any = None
        self._spool: Spool | None = None
        self._spool_failed = False

    def _after_fork(self) -> None:
        """In a forked child: fresh queue, locks, threads, client and spool handle. What the
        parent had queued stays the parent's business and is not sent from here."""
        for thing in (self._client, self._spool):
            if thing is not None:
                _inherited.append(thing)
        self._gen.stop.set()  # (no thread survives a fork; this is for the pid check's sake)
        self._reset()

    # -- the request thread's side -----------------------------------------------------

    def enqueue(self, event: Event) -> bool:
        """Offer an event; True when accepted for delivery (in ``sync`` mode: delivered).
        Never blocks on the network and never raises."""
        if capture_stack:
            capture_stack[-1].append(event)
            return True
        try:
            settings = self.settings
            if not settings.active or self._closed:
                return False
            if self._pid != os.getpid():
                self._after_fork()
            if settings.delivery == "sync":
                return self._send_inline(event)
            size = estimate_size(event)
            if settings.spool_path is not None:
                return self._enqueue_spooled(event, size)
            with self._lock:
                if self._count >= settings.queue_size or self._bytes + size > settings.queue_bytes:
                    self._counters["dropped_queue_full"] += 1
                    accepted = False
                else:
                    self._ready.append(_Item(event, size, False))
                    self._count += 1
                    self._bytes += size
                    self._counters["enqueued"] += 1
                    accepted = True
                    if self._idle:
                        self._work.notify()
                start = accepted and self._senders == 0
                if start:
                    self._senders = 1
            if start:
                self._start_sender()
            elif not accepted:
                self._log_limited(
                    "queue_full",
                    "queue is full (%s events / %s bytes)",
                    settings.queue_size,
                    settings.queue_bytes,
                )
            return accepted
        except Exception:  # never into the host app
            logger.debug("affy_middleware: enqueue failed", exc_info=True)
            return False

    def _enqueue_spooled(self, event: Event, size: int) -> bool:
        spool = self._open_spool()
        settings = self.settings
        with self._lock:
            room = (
                not self._overflow
                and self._count < settings.queue_size
                and self._bytes + size <= settings.queue_bytes
            )
            if room:  # reserve the place before the (slower) write
                self._count += 1
                self._bytes += size
        stored = False
        if spool is not None:
            try:
                spool.add(event, claimed=room)
                stored = True
            except sqlite3.Error as exc:
                with self._lock:
                    self._counters["spool_errors"] += 1
                self._log_limited(
                    "spool", "cannot write the spool %s: %s", settings.spool_path, exc
                )
        with self._lock:
            if room:
                self._ready.append(_Item(event, size, stored))
                self._counters["enqueued"] += 1
                if self._idle:
                    self._work.notify()
            elif stored:
                self._overflow = True
                self._counters["enqueued"] += 1
            else:
                self._counters["dropped_queue_full"] += 1
            start = self._senders == 0 and (room or stored)
            if start:
                self._senders = 1
        if start:
            self._start_sender()
        self._start_keeper()
        return room or stored

    def _open_spool(self) -> Spool | None:
        if self._spool is None and not self._spool_failed and self.settings.spool_path:
            with self._client_lock:  # not self._lock: opening may wait on SQLite
                if self._spool is None and not self._spool_failed:
                    try:
                        self._spool = Spool(self.settings.spool_path, lease=self._spool_lease)
                    except (sqlite3.Error, OSError) as exc:
                        self._spool_failed = True
                        logger.error(
                            "affy_middleware: cannot open the spool %s (%s); events are kept "
                            "in memory only",
                            self.settings.spool_path,
                            exc,
                        )
        return self._spool

    def start(self) -> None:
        """Start delivering now rather than at the first event: replays the spool."""
        if not self.settings.active or self.settings.delivery != "thread" or self._closed:
            return
        if self._pid != os.getpid():
            self._after_fork()
        if self.settings.spool_path is not None and self._open_spool() is not None:
            self._start_keeper()

    # -- threads -----------------------------------------------------------------------

    def _start_sender(self, gen: _Generation | None = None) -> None:
        """Start one sender thread; ``_senders`` was already counted under the lock."""
        _warn_if_uwsgi_without_threads()
        gen = gen or self._gen
        thread = threading.Thread(
            target=self._run_sender, args=(gen,), name="affy-sender", daemon=True
        )
        try:
            thread.start()
        except RuntimeError:  # interpreter shutting down
            with self._lock:
                if gen is self._gen:
                    self._senders -= 1
            return
        gen.threads.append(thread)

    def _start_keeper(self) -> None:
        if self._keeper_started or self._spool is None:
            return
        with self._lock:
            if self._keeper_started:
                return
            self._keeper_started = True
        gen = self._gen
        thread = threading.Thread(
            target=self._run_keeper, args=(gen,), name="affy-spool", daemon=True
        )
        try:
            thread.start()
        except RuntimeError:
            self._keeper_started = False
            return
        gen.threads.append(thread)

    def _sender(self) -> Sender:
        if self._send_override is not None:
            return self._send_override
        if self._client is None:
            with self._client_lock:  # not self._lock: enqueue must never wait on this
                if self._client is None:
                    try:
                        self._client = AffyClient(self.settings)
                    except Exception as exc:  # retried like a network error
                        self._log_limited("client", "cannot create the HTTP client: %r", exc)
                        return _failing(AffyNetworkError(f"cannot create the HTTP client: {exc!r}"))
        send: Sender = self._client.send_event
        return send

    def _send(self, event: Event) -> object:
        """One HTTP call, fenced so that a fork never lands in the middle of one: a child
        would inherit the TLS library's and the connection pool's locks held forever."""
        with self._lock:
            if self._forking:
                self._http_idle.wait(FORK_WAIT)
            self._http_active += 1
        try:
            return self._sender()(event)
        finally:
            with self._lock:
                self._http_active -= 1
                if self._http_active == 0:
                    self._http_idle.notify_all()

    def before_fork(self) -> None:
        """Hold new HTTP calls and wait (bounded) for running ones to end."""
        with self._lock:
            self._forking = True
            end = time.monotonic() + FORK_WAIT
            while self._http_active and time.monotonic() < end:
                self._http_idle.wait(end - time.monotonic())

    def after_fork_in_parent(self) -> None:
        with self._lock:
            self._forking = False
            self._http_idle.notify_all()

    def _run_sender(self, gen: _Generation) -> None:
        try:
            item = self._next(gen)
            while item is not None:
                finished = False
                try:
                    finished = self._deliver(item, gen)
                finally:
                    item = self._finish(item, gen, finished)
                if item is None:
                    item = self._next(gen)
        except Exception:  # a bug of ours: say so, keep the host alive
            logger.exception("affy_middleware: delivery thread failed")
        finally:
            with self._lock:
                if gen is self._gen:
                    self._senders -= 1

    def _next(self, gen: _Generation) -> _Item | None:
        item, grow = self._take(gen)
        for _ in range(grow):
            self._start_sender(gen)
        return item

    def _take(self, gen: _Generation) -> tuple[_Item | None, int]:
        """The next event whose visit has nothing in flight, and how many sender threads
        to add (counted already)."""
        with self._lock:
            while True:
                if gen.stop.is_set():
                    return None, 0
                while self._ready:
                    item = self._ready.popleft()
                    key = item.event.order_key
                    if key is not None:
                        backlog = self._busy.get(key)
                        if backlog is not None:  # an earlier event of this visit is out
                            backlog.append(item)
                            continue
                        self._busy[key] = deque()
                    self._in_flight += 1
                    self._held[item.event.event_id] = item
                    # More waiting than idle threads: grow the pool, up to max_in_flight.
                    grow = min(
                        len(self._ready) - self._idle,
                        self.settings.max_in_flight - self._senders,
                    )
                    if grow > 0:
                        self._senders += grow
                    return item, max(grow, 0)
                self._idle += 1
                try:
                    self._work.wait(IDLE_WAIT)
                finally:
                    self._idle -= 1

    def _finish(self, item: _Item, gen: _Generation, finished: bool) -> _Item | None:
        """Account for a finished item; return the next event of the same visit, if any,
        which this thread sends next (keeping the visit's order)."""
        spool = self._spool
        if not finished and item.spooled and spool is not None:
            with contextlib.suppress(sqlite3.Error):
                spool.release([item.event.event_id])
        with self._lock:
            if gen is not self._gen:  # shut down meanwhile: the state was reset
                return None
            self._held.pop(item.event.event_id, None)
            self._in_flight -= 1
            self._count -= 1
            self._bytes -= item.size
            if not finished and not item.spooled:
                self._counters["dropped_shutdown"] += 1
            nxt = None
            key = item.event.order_key
            if key is not None:
                backlog = self._busy.get(key)
                if backlog:
                    nxt = backlog.popleft()
                    self._in_flight += 1
                    self._held[nxt.event.event_id] = nxt
                else:
                    self._busy.pop(key, None)
            if self._count == 0:
                self._done.notify_all()
            if self._overflow and self._count <= self.settings.queue_size // 2:
                gen.wake_keeper.set()
            if gen.stop.is_set() and nxt is not None:
                # Leave the rest of this visit for the shutdown sweep.
                self._busy.setdefault(key or "", deque()).appendleft(nxt)
                self._in_flight -= 1
                self._held.pop(nxt.event.event_id, None)
                nxt = None
            return nxt

    # -- one event, with retries -------------------------------------------------------

    def _deliver(self, item: _Item, gen: _Generation) -> bool:
        """Send until AFFY accepts or refuses the event, or it expires. False when the
        dispatcher stopped first (the event is then neither sent nor dropped)."""
        event = item.event
        deadline = self.settings.retry_deadline
        while True:
            probe = self._wait_for_gate(gen)
            if probe is None:
                return False
            if item.spooled and not self._still_ours(item):
                with self._lock:
                    self._counters["handed_over"] += 1
                    if probe:
                        self._breaker.cancel_probe()
                        self._gate.notify_all()
                return True  # another process took the row over: it sends it, not us
            if time.time() - event.created_at > deadline:
                with self._lock:
                    self._counters["dropped_expired"] += 1
                    if probe:
                        self._breaker.cancel_probe()
                        self._gate.notify_all()
                self._log_limited("expired", "gave up an event older than %.0f s", deadline)
                self._forget(item)
                return True
            if item.attempts:
                with self._lock:
                    self._counters["retried"] += 1
            item.attempts += 1
            try:
                self._send(event)
            except Exception as exc:
                if is_retryable(exc):
                    self._retryable_failure(item, exc, probe, gen)
                    continue
                self._rejected(item, exc, probe)
                return True
            with self._lock:
                self._counters["sent"] += 1
                self._breaker.success()
                self._gate.notify_all()
            self._forget(item)
            return True

    def _still_ours(self, item: _Item) -> bool:
        spool = self._spool
        if spool is None or spool.lease_safe():
            return True
        try:  # our lease renewal ran late (a frozen process): check before sending
            return spool.reclaim(item.event.event_id)
        except sqlite3.Error:
            return True

    def _wait_for_gate(self, gen: _Generation) -> bool | None:
        """Wait while the pipeline is paused. Returns whether this request is the probe,
        or None when the dispatcher stops."""
        with self._lock:
            while True:
                if gen.stop.is_set():
                    return None
                wait = self._breaker.wait_time(time.monotonic())
                if wait is None:
                    return self._breaker.admit()
                self._gate.wait(min(wait, 1.0))

    def _retryable_failure(
        self, item: _Item, exc: Exception, probe: bool, gen: _Generation
    ) -> None:
        retry_after = retry_after_of(exc)
        with self._lock:
            self._counters["failed"] += 1
            pauses = self._breaker.pauses
            self._breaker.failure(time.monotonic(), probe=probe, retry_after=retry_after)
            paused = self._breaker.paused_until > time.monotonic()
            if self._breaker.pauses != pauses:
                self._counters["pauses"] += 1
                self._log_limited(
                    "pause",
                    "AFFY is failing (%s); pausing delivery for %.1f s",
                    exc,
                    self._breaker.paused_until - time.monotonic(),
                )
            self._gate.notify_all()
        if not paused:  # an isolated failure: this event alone backs off
            gen.stop.wait(self.policy.backoff(item.attempts - 1))

    def _rejected(self, item: _Item, exc: Exception, probe: bool) -> None:
        with self._lock:
            self._counters["failed"] += 1
            self._counters["dropped_rejected"] += 1
            if isinstance(exc, AffyAPIError):
                self._breaker.success()  # AFFY answered: it is up
            elif probe:
                self._breaker.cancel_probe()
            self._gate.notify_all()
        if isinstance(exc, AffyAPIError):
            reason = (type(exc).__name__, exc.status_code, exc.error, exc.message)
            if reason not in self._reasons_logged and len(self._reasons_logged) < 100:
                self._reasons_logged.add(reason)
                logger.warning(
                    "affy_middleware: AFFY refused a %s event, not retrying: %s",
                    item.event.kind,
                    exc,
                )
            else:
                logger.debug("affy_middleware: AFFY refused a %s event: %s", item.event.kind, exc)
        else:
            logger.error(
                "affy_middleware: dropped a %s event after an unexpected error",
                item.event.kind,
                exc_info=exc,
            )
        self._forget(item)

    def _forget(self, item: _Item) -> None:
        if item.spooled and self._spool is not None:
            try:
                self._spool.delete(item.event.event_id)
            except sqlite3.Error as exc:  # it may be sent again later: AFFY dedupes by key
                self._counters["spool_errors"] += 1
                self._log_limited("spool", "cannot update the spool: %s", exc)

    # -- sync mode ---------------------------------------------------------------------

    def _send_inline(self, event: Event) -> bool:
        """``delivery="sync"``: send now, a few bounded tries; never raise."""
        spool = self._open_spool() if self.settings.spool_path else None
        spooled = False
        if spool is not None:
            try:
                spool.add(event, claimed=True)
                spooled = True
            except sqlite3.Error:
                self._counters["spool_errors"] += 1
        item = _Item(event, 0, spooled)
        with self._lock:
            self._counters["enqueued"] += 1
        budget_end = time.monotonic() + max(self.settings.timeout, self.settings.flush_timeout)
        send = self._send
        for attempt in range(3):
            with self._lock:
                if self._breaker.wait_time(time.monotonic()) is not None:
                    break  # AFFY is known to be down: don't make this request wait on it
                probe = self._breaker.admit()
                if attempt:
                    self._counters["retried"] += 1
            item.attempts += 1
            try:
                send(event)
            except Exception as exc:
                if not is_retryable(exc):
                    self._rejected(item, exc, probe)
                    return False
                retry_after = retry_after_of(exc)
                with self._lock:
                    self._counters["failed"] += 1
                    self._breaker.failure(time.monotonic(), probe=probe, retry_after=retry_after)
                delay = retry_after if retry_after is not None else self.policy.backoff(attempt)
                if time.monotonic() + delay >= budget_end:
                    break
                time.sleep(delay)
                continue
            with self._lock:
                self._counters["sent"] += 1
                self._breaker.success()
            self._forget(item)
            return True
        with self._lock:
            if not spooled:
                self._counters["dropped_unsent"] += 1
        if spooled and spool is not None:
            with contextlib.suppress(sqlite3.Error):
                spool.release([event.event_id])
        self._log_limited("unsent", "could not deliver an event inline (AFFY unreachable)")
        return False

    # -- the spool keeper ---------------------------------------------------------------

    def _run_keeper(self, gen: _Generation) -> None:
        """Renews our leases and takes over spooled rows: at start-up, when memory has
        room again after an overflow, and rows of processes that died."""
        spool = self._spool
        if spool is None:
            return
        next_renew = time.monotonic() + spool.lease / 4
        while not gen.stop.is_set():
            try:
                if time.monotonic() >= next_renew:
                    spool.renew()
                    next_renew = time.monotonic() + spool.lease / 4
                self._refill(spool, gen)
            except sqlite3.Error as exc:
                self._counters["spool_errors"] += 1
                self._log_limited("spool", "spool maintenance failed: %s", exc)
            except Exception:
                logger.exception("affy_middleware: spool thread failed")
                return
            gen.wake_keeper.wait(CLAIM_INTERVAL)
            gen.wake_keeper.clear()

    def _refill(self, spool: Spool, gen: _Generation) -> int:
        """Move claimable spool rows into memory, as far as it has room; how many."""
        with self._refill_lock:  # one at a time, so flush() sees the keeper's claims
            return self._refill_locked(spool, gen)

    def _refill_locked(self, spool: Spool, gen: _Generation) -> int:
        with self._lock:
            room = self.settings.queue_size - self._count
            overflow = self._overflow
        if room <= 0:
            return 0
        events = spool.claim(room)
        with self._lock:
            if gen is not self._gen:
                spool.release(e.event_id for e in events)
                return 0
            for event in events:
                size = estimate_size(event)
                self._ready.append(_Item(event, size, True))
                self._count += 1
                self._bytes += size
            if overflow and len(events) < room:
                self._overflow = False
            if events and self._idle:
                self._work.notify(len(events))
            start = bool(events) and self._senders == 0
            if start:
                self._senders = 1
        if start:
            self._start_sender()
        return len(events)

    # -- flush, shutdown, stats --------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything accepted was delivered (or dropped); True if it was.
        ``None`` means ``settings.flush_timeout``; never waits longer than the timeout."""
        if self._pid != os.getpid() or capture_stack:
            return True
        limit = self.settings.flush_timeout if timeout is None else max(0.0, timeout)
        end = time.monotonic() + limit
        spooled = self.settings.spool_path is not None and self.settings.delivery == "thread"
        if spooled:
            self.start()
        while True:
            with self._lock:
                while self._count > 0 or self._overflow:
                    remaining = end - time.monotonic()
                    if remaining <= 0:
                        return False
                    if self._overflow:
                        self._gen.wake_keeper.set()
                    self._done.wait(min(remaining, 0.25) if self._overflow else remaining)
            spool = self._spool
            if not spooled or spool is None or not self.settings.active:
                return True
            try:  # memory is empty: is anything left in the spool that we may take?
                claimed = self._refill(spool, self._gen)
            except sqlite3.Error:
                return True
            if claimed == 0:
                with self._lock:
                    if self._count == 0 and not self._overflow:
                        return True

    def shutdown(self, timeout: float | None = None, *, final: bool = False) -> None:
        """Flush for up to ``timeout`` seconds, then stop the threads (bounded). Events
        still queued are kept in the spool for the next process, else counted as
        ``dropped_shutdown``. A later ``enqueue`` starts again (unless ``final``)."""
        if final:
            self._closed = True
        if self._pid != os.getpid():
            self._after_fork()
            return
        limit = self.settings.flush_timeout if timeout is None else max(0.0, timeout)
        end = time.monotonic() + limit
        # Keep a little of the budget for the threads to stop and hand back their events.
        self.flush(limit - min(0.2, limit / 5))
        with self._lock:
            gen = self._gen
            gen.stop.set()
            gen.wake_keeper.set()
            self._work.notify_all()
            self._gate.notify_all()
        for thread in gen.threads:
            thread.join(max(0.0, end - time.monotonic()))
        with self._lock:
            left = list(self._ready)
            for backlog in self._busy.values():
                left.extend(backlog)
            in_flight = list(self._held.values())
            client, spool = self._client, self._spool
            counters, closed = self._counters, self._closed
            alive = any(t.is_alive() for t in gen.threads)
            self._reset()
            self._counters = counters
            self._closed = closed
            if alive:  # a thread is still in a request: let it keep its client
                _inherited.append(client)
            else:
                self._client = client
            self._spool = spool
        unspooled = [item for item in left if not item.spooled]
        if spool is not None:
            with contextlib.suppress(sqlite3.Error):
                spool.release(item.event.event_id for item in left if item.spooled)
                if not alive:
                    spool.release(item.event.event_id for item in in_flight if item.spooled)
        lost = len(unspooled) + (0 if alive else sum(not i.spooled for i in in_flight))
        if lost:
            with self._lock:
                self._counters["dropped_shutdown"] += lost
            logger.warning(
                "affy_middleware: %d event(s) not delivered at shutdown (AFFY unreachable "
                "within %.1f s); set AFFY_SPOOL_PATH to keep them for the next start",
                lost,
                limit,
            )
        if final and not alive and self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None

    def stats(self) -> dict[str, int]:
        with self._lock:
            result = dict(self._counters)
            result["queued"] = self._count - self._in_flight
            result["in_flight"] = self._in_flight
            result["paused"] = int(self._breaker.paused)
            spool = self._spool
        result["dropped"] = sum(v for k, v in result.items() if k.startswith("dropped_"))
        result["spooled"] = 0
        if spool is not None and self._pid == os.getpid():
            with contextlib.suppress(sqlite3.Error):
                result["spooled"] = spool.count()
        return result

    # -- logging -----------------------------------------------------------------------

    def _log_limited(self, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        last = self._last_log.get(kind)
        if last is not None and now - last < LOG_INTERVAL:
            return
        self._last_log[kind] = now
        logger.warning("affy_middleware: " + message, *args)
