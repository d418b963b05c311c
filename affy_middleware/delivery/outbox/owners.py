"""Who holds an outbox row: a host (and pid namespace) and a pid, and whether it lives.

A row claimed by a process that died on this host can be taken over at once instead of
waiting for its lease to expire; any store that records owners can use these.
"""

from __future__ import annotations

import os
import socket

__all__ = ["host_identity", "pid_alive"]


def host_identity() -> str:
    """This host and pid namespace: a pid is only meaningful inside both."""
    try:
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        namespace = "-"
    return f"{socket.gethostname()}/{namespace}"


def pid_alive(pid: int) -> bool:
    """Whether a process of this host (and pid namespace) still runs."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    try:  # A killed child its parent has not reaped yet is a zombie: dead for us.
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True
