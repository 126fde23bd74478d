"""A version of what a container list reads, so that a resident process (the API service) can
answer repeated lists from memory: ``docker ps``, compose, dashboards and monitoring ask for
``GET /containers/json`` over and over while nothing has changed.

A list reads the database's rows and, for each live container, whether its conmon still runs
(``ContainerService.reconcile``). The version covers both:

- the database file's identity and SQLite's ``PRAGMA data_version`` on a connection of its own,
  which changes with every commit of any other connection, in any process (the CLI, exit
  commands, health checks, this process's workers);
- the conmon exits this process's exit handler has seen (engine.exits): it watches the conmon of
  every live container of the root through a pidfd, so a monitor that is gone before its
  clean-up commits changes the version too.

While this process's handler does not hold the root's exit-handler lock (another process
handles the exits, or the handler stopped), conmon exits go unseen here: there is no version
and every list is read anew.
"""

from __future__ import annotations

import os
import sqlite3
import threading

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from dockerbank.engine.exits import ExitHandler

Version = tuple[int, int, int, int]


class StateVersion:
    """:meth:`current` is equal for two calls only when no list could tell them apart."""

    def __init__(self, db_path: Path, handler: Callable[[], ExitHandler | None]):
        self.db_path = db_path
        self.handler = handler
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._file: tuple[int, int] = (0, 0)

    def current(self) -> Version | None:
        """The version now; None when it cannot be known (no exit handler of this process
        holds the lock, or the database cannot be read)."""
        handler = self.handler()
        if handler is None or handler.guard is None:
            return None
        exits = handler.seen_exits  # first: an exit counted after this read changes the next version
        try:
            with self._lock:
                return (*self._file_version(), exits)
        except (OSError, sqlite3.Error):
            return None

    def _file_version(self) -> tuple[int, int, int]:
        st = os.stat(self.db_path)
        if self._conn is None or self._file != (st.st_dev, st.st_ino):  # first use, or a replaced file
            if self._conn is not None:
                self._conn.close()
            # mode=rw: never creates a database; this connection only reads the pragma. The caller
            # is an event loop: a database busy beyond 50 ms (a checkpoint, a migration) means
            # no version this time (the list is read anew), not a stalled loop
            self._conn = sqlite3.connect(f"file:{self.db_path}?mode=rw", uri=True, check_same_thread=False,
                                         timeout=0.05)
            self._file = (st.st_dev, st.st_ino)
        return (*self._file, self._conn.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
