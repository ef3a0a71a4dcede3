"""The queue a SQLite database's writers wait in, in front of SQLite's own write lock.

Every transaction on SQLite takes the write lock at BEGIN (server.db). SQLite makes a waiter poll: it sleeps
1, 2, 5 … 100 ms between tries, and meanwhile the lock goes to whoever asks at the right moment, so under
load some sign-ins waited hundreds of milliseconds. Here the threads of a process queue on a lock that
wakes the next one at once, and one thread per process at a time waits for the other processes on an
advisory `flock` of a file beside the database, which the kernel hands over as soon as it is released (and
releases if the holder dies). The SQLite lock is still taken after both, so other programs writing the file
(the console, a backup) are excluded as before.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from typing import Any

from sqlalchemy.exc import OperationalError

# How long a transaction waits for the other threads of its process: as long as SQLite's busy_timeout.
THREAD_WAIT_SECONDS = 30
_ENTERED = "tokenward_writer_queue"


class WriterQueue:
    def __init__(self, database: str | None) -> None:
        self._threads = threading.Lock()
        self._path = f"{database}.writers" if database and database != ":memory:" else None
        self._fd: int | None = None
        self._pid = 0

    def enter(self, info: dict[str, Any]) -> None:
        if not self._threads.acquire(timeout=THREAD_WAIT_SECONDS):
            # As SQLite's own busy timeout would end it: answered as database_unavailable (503).
            raise OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked"))
        try:
            if (fd := self._file()) is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        info[_ENTERED] = True

    def leave(self, info: dict[str, Any]) -> None:
        if not info.pop(_ENTERED, False):
            return
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()

    def _file(self) -> int | None:
        """One descriptor per process (a forked worker opens its own: a lock belongs to an open file)."""
        if self._path is None:
            return None
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd
