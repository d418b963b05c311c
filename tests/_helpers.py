"""Helpers shared by the tests that run real subprocesses (``affy sandbox``, ``make serve``)."""

from __future__ import annotations

import queue
import subprocess
import threading
from typing import IO

_pumps: list[threading.Thread] = []


def read_lines(stream: IO[str]) -> queue.Queue[str]:
    """The lines of ``stream`` as they come, read by a thread (``get(timeout=...)`` waits)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    _pumps.append(thread)
    return lines


def close_process(proc: subprocess.Popen[str]) -> None:
    """Stop the process if it still runs, let the readers reach EOF, close the pipes."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(30)
    while _pumps:
        _pumps.pop().join(10)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
