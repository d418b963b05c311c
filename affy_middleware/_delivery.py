"""Delivery: the queue between the request thread and AFFY.

PLACEHOLDER IMPLEMENTATION. The interface below is the contract the middleware, the
decorators and the testing plugin rely on; the internals are to be replaced by the real
dispatcher (bounded queue, retries, spool, fork safety).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator, Mapping

import httpx

from ._settings import Settings
from ._wire import Event

__all__ = [
    "Dispatcher",
    "dispatcher_for",
    "configure_default",
    "default_settings",
    "capture",
    "flush",
    "shutdown",
    "stats",
]


class Dispatcher:
    """Delivers events for one ``Settings``. ``enqueue`` never blocks and never raises."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._queue: queue.Queue[Event] = queue.Queue(settings.queue_size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._sent = 0

    def enqueue(self, event: Event) -> bool:
        """Offer an event; True when accepted for delivery."""
        if _capture_stack:
            _capture_stack[-1].append(event)
            return True
        if not self.settings.active:
            return False
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            return False
        self._ensure_thread()
        return True

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="affy")
                self._thread.start()

    def _run(self) -> None:
        headers = (
            {"Authorization": f"Bearer {self.settings.api_key}"} if self.settings.api_key else {}
        )
        with httpx.Client(base_url=self.settings.api_url, headers=headers) as client:
            while True:
                event = self._queue.get()
                try:
                    client.post(
                        event.path,
                        content=event.encoded(),
                        headers={
                            "Idempotency-Key": event.event_id,
                            "Content-Type": "application/json",
                        },
                    )
                    self._sent += 1
                except Exception:
                    pass
                finally:
                    self._queue.task_done()

    def flush(self, timeout: float | None = None) -> bool:
        self._queue.join()
        return True

    def shutdown(self, timeout: float | None = None) -> None:
        self.flush(timeout)

    def stats(self) -> dict[str, int]:
        return {"sent": self._sent, "queued": self._queue.qsize()}


_dispatchers: dict[Settings, Dispatcher] = {}
_registry_lock = threading.Lock()
_default: Settings | None = None
_capture_stack: list[list[Event]] = []


def dispatcher_for(settings: Settings) -> Dispatcher:
    """The process's one dispatcher for these settings (created on first use)."""
    with _registry_lock:
        dispatcher = _dispatchers.get(settings)
        if dispatcher is None:
            dispatcher = _dispatchers[settings] = Dispatcher(settings)
        return dispatcher


def configure_default(settings: Settings) -> None:
    """Make ``settings`` the ones used by calls made outside any middleware's request."""
    global _default
    _default = settings


def default_settings() -> Settings:
    """Settings for work outside a request: the last configured, else the environment."""
    global _default
    if _default is None:
        _default = Settings.from_env()
    return _default


@contextlib.contextmanager
def capture() -> Iterator[list[Event]]:
    """Capture every enqueued event (instead of sending it) while the block runs."""
    events: list[Event] = []
    _capture_stack.append(events)
    try:
        yield events
    finally:
        _capture_stack.remove(events)


def flush(timeout: float | None = None) -> bool:
    return all(d.flush(timeout) for d in list(_dispatchers.values()))


def shutdown(timeout: float | None = None) -> None:
    for d in list(_dispatchers.values()):
        d.shutdown(timeout)


def stats() -> Mapping[str, int]:
    total: dict[str, int] = {}
    for d in list(_dispatchers.values()):
        for key, value in d.stats().items():
            total[key] = total.get(key, 0) + value
    return total
