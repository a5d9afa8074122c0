"""What one ``wayline dev`` takes before it touches anything: its port and its database.

Two servers on one SQLite file would resume each other's runs, release each other's
leases and call apps twice (issue 12, item 6). So the process binds its port and takes
an exclusive ``flock`` on ``<db>.lock`` first, and holds both until it exits; the kernel
drops the lock when the process dies, even by ``kill -9``, so a crash never leaves a
stale lock behind. Each failure is a ``StartupError`` whose message is the one line the
CLI prints.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from pathlib import Path


class StartupError(Exception):
    """``wayline dev`` cannot start; the message says why in one line."""


def bind_port(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (handed to uvicorn), or StartupError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # Like uvicorn: lets a restarted server rebind at once despite TIME_WAIT, while a
    # port some process is listening on still fails with EADDRINUSE.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(f"port {port} is in use (on {host})") from None
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(False)
    return sock


class DatabaseLock:
    """An exclusive lock on ``<db>.lock`` that holds the owner's pid, for the process's life."""

    def __init__(self, db: str) -> None:
        self.path = Path(f"{db}.lock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                who = f" (pid {holder})" if holder else ""
                raise StartupError(f"database {db} is in use by another wayline dev{who}") from None
            raise StartupError(f"cannot lock database {db}: {exc.strerror or exc}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = None


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode().strip())
    return None
