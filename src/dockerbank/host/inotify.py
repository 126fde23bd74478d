"""inotify on one directory: wake when a file appears in it or is written (Linux; ctypes over libc).

Waiters that would otherwise poll a file (conmon's exit file, the event log) sleep on the
descriptor instead and answer as soon as the file changes. Where inotify cannot be had (no
descriptors left, not Linux) ``fd`` is -1 and callers fall back to a short poll.
"""

from __future__ import annotations

import os
import select
import struct
from pathlib import Path

IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
_HEADER = struct.Struct("iIII")   # wd, mask, cookie, len (struct inotify_event)

_libc = None


def _load_libc():
    global _libc
    if _libc is None:
        import ctypes
        import ctypes.util

        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


class DirWatch:
    """Changes in one directory from the moment of creation until :meth:`close`."""

    def __init__(self, directory: Path, mask: int = IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE):
        self.fd = -1
        try:
            libc = _load_libc()
            fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        except (OSError, AttributeError):
            return
        if fd < 0:
            return
        if libc.inotify_add_watch(fd, os.fsencode(str(directory)), mask) < 0:
            os.close(fd)
            return
        self.fd = fd

    def names(self) -> list[bytes]:
        """The entries named by the records queued so far (empty when none or without inotify)."""
        if self.fd < 0:
            return []
        out: list[bytes] = []
        while True:
            try:
                data = os.read(self.fd, 64 * 1024)
            except BlockingIOError:
                return out
            except OSError:
                return out
            if not data:
                return out
            offset = 0
            while offset + _HEADER.size <= len(data):
                _wd, _mask, _cookie, length = _HEADER.unpack_from(data, offset)
                start = offset + _HEADER.size
                out.append(data[start:start + length].rstrip(b"\0"))
                offset = start + length

    def wait(self, timeout: float, *others: int) -> None:
        """Sleep until a change here, one of the ``others`` descriptors is readable, or ``timeout``."""
        fds = [fd for fd in (self.fd, *others) if fd >= 0]
        if fds:
            select.select(fds, [], [], max(0.0, timeout))
        else:
            import time

            time.sleep(max(0.0, timeout))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> DirWatch:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
