"""Wake-ups on the event log: a waiter sleeps until some process appends an event (or a timeout).

Every state change of a container is recorded in the event log (events.log) by whoever makes
it (a CLI, conmon's exit command, the API service's threads), so an append is the one signal
that "something may have changed" which reaches every process. A waiter (``wait`` with a
condition, the API's ``/containers/{id}/wait``) watches the log's directory with inotify (other
files there, the database's, wake nothing) and re-reads the state when the log grows, instead of
polling every 100 ms: it answers as soon as the state allows.

Without inotify (not Linux, no descriptors left) :meth:`EventWatch.wait` sleeps a short poll
interval instead, so callers work the same, only later.
"""

from __future__ import annotations

import os
import select
import struct
import time
from pathlib import Path

IN_MODIFY = 0x00000002
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
POLL = 0.1  # seconds between reads when inotify is unavailable

_libc = None


def _inotify_fd(directory: Path) -> int:
    """An inotify descriptor watching appends to and renames into ``directory``; -1 if impossible."""
    global _libc
    try:
        if _libc is None:
            import ctypes
            import ctypes.util

            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            return -1
    except (OSError, AttributeError):
        return -1
    if _libc.inotify_add_watch(fd, os.fsencode(str(directory)), IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0:
        os.close(fd)
        return -1
    return fd


class EventWatch:
    """Watches one event log from its creation until :meth:`close`: events appended after the
    watch began wake :meth:`wait`, so a caller that reads the state after opening the watch
    misses no change (open the watch, read, wait, read again)."""

    def __init__(self, log_path: Path):
        log_path = Path(log_path)
        self.name = os.fsencode(log_path.name)
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass
        self.fd = _inotify_fd(log_path.parent)

    @classmethod
    def of(cls, config) -> EventWatch:
        """A watch of ``config``'s event log."""
        from dockerbank.events.log import EventLog

        return cls(EventLog.of(config).path)

    def _drain(self) -> bool:
        """Read the queued inotify records; whether one is about the log (append, creation,
        rotation into place)."""
        relevant = False
        try:
            while True:
                data = os.read(self.fd, 65536)
                if not data:
                    break
                offset = 0
                while offset + 16 <= len(data):
                    _wd, _mask, _cookie, length = struct.unpack_from("iIII", data, offset)
                    name = data[offset + 16: offset + 16 + length].rstrip(b"\0")
                    relevant = relevant or name == self.name
                    offset += 16 + length
        except BlockingIOError:
            pass
        return relevant

    def wait(self, timeout: float) -> bool:
        """Block until an event is appended or ``timeout`` seconds pass; True when woken by an event."""
        if self.fd < 0:
            time.sleep(min(timeout, POLL))
            return False
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            try:
                ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            except InterruptedError:
                ready = []
            if ready and self._drain():
                return True
            if time.monotonic() >= deadline:
                return False

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> EventWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
