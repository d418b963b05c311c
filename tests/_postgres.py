"""A real PostgreSQL server for the tests: Debian's binaries, a temp folder, a free port.

``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` user
(made by Debian's package). The superuser has a password and host connections need it
(scram), so the tests see the password redaction work against a real server.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

__all__ = ["PASSWORD", "PostgresServer", "find_binaries"]

#: The superuser's password: the tests check it never shows.
PASSWORD = "s3cret-pw-Affy"
USER = "affy"


def find_binaries() -> str | None:
    """Debian's PostgreSQL bin folder (newest version), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    return os.path.dirname(found[-1]) if found else None


def _version(path: str) -> float:
    try:
        return float(path.split("/")[4])
    except (IndexError, ValueError):
        return 0.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """``start()`` it, ``url(db)`` to connect, ``create_db()`` for a fresh database."""

    def __init__(self, bindir: str, *, max_connections: int = 200) -> None:
        self.bindir = bindir
        self.max_connections = max_connections
        self.root = tempfile.mkdtemp(prefix="affy-pg-")
        self.data = os.path.join(self.root, "data")
        self.port = _free_port()
        self._user: dict[str, Any] = {}
        self._n = 0
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self._user = {"user": entry.pw_uid, "group": entry.pw_gid}

    def _run(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [os.path.join(self.bindir, args[0]), *args[1:]],
            check=True,
            capture_output=True,
            timeout=timeout,
            cwd=self.root,
            **self._user,
        )

    def start(self) -> None:
        pwfile = os.path.join(self.root, "pw")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        if self._user:
            os.chown(pwfile, self._user["user"], self._user["group"])
        self._run(
            "initdb", "-D", self.data, "-U", USER, "--pwfile", pwfile, "-A", "scram-sha-256",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        self._start()

    def _start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            f" -c max_connections={self.max_connections} -c superuser_reserved_connections=0"
        )
        log = os.path.join(self.root, "log")
        self._run("pg_ctl", "-D", self.data, "-o", options, "-l", log, "-w", "-t", "60", "start")

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """The server shut down (``pg_ctl stop -m fast``: sessions ended, nothing
        accepted) while the block runs, then started again on the same port and data."""
        self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop")
        try:
            yield
        finally:
            self._start()

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop", timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)

    def processes(self) -> list[int]:
        """The postmaster and its children (backends, checkpointer, ...), from /proc."""
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            postmaster = int(f.readline())
        found = [postmaster]
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:  # ended meanwhile
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:  # its parent pid
                found.append(int(entry))
        return found

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Every process of the server stopped (SIGSTOP), as a frozen host or a paused VM
        would be: connections stay open, the kernel still acknowledges, nothing answers.
        Woken (SIGCONT) when the block ends, whatever happened in it."""
        stopped = []
        try:
            for pid in self.processes():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
                    stopped.append(pid)
            yield
        finally:
            for pid in stopped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    def url(self, db: str = "postgres", password: str = PASSWORD) -> str:
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{db}"

    def create_db(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        self._n += 1
        name = f"t{os.getpid()}_{self._n}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
