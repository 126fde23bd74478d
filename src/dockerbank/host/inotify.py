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
IN_IGNORED = 0x00008000
# Instances whose watch was removed, for the next DirWatch of this process: closing an inotify
# instance that ever had a watch waits for the kernel's SRCU grace period (fsnotify's mark
# reaper, 5-20 ms here), which an exec, a stop or an API wait paid on the way to its answer.
# Removing a watch is asynchronous and cheap, so instances are kept and reused instead.
_SPARE: list[int] = []
_SPARE_MAX = 8


def _load_libc():
    global _libc
    if _libc is None:
        import ctypes

        # the process's own symbols (libc is loaded): find_library would run ldconfig (~3 ms)
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _forget_spares() -> None:
    """In a forked child: the parent's spare instances are shared with it, never reused here
    (closing the child's copies costs nothing: the parent keeps the instances)."""
    while _SPARE:
        try:
            os.close(_SPARE.pop())
        except (OSError, IndexError):
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_spares)


def _drain(fd: int) -> None:
    while True:
        try:
            if not os.read(fd, 64 * 1024):
                return
        except OSError:  # BlockingIOError: nothing queued
            return


class DirWatch:
    """Changes in one directory from the moment of creation until :meth:`close`."""

    def __init__(self, directory: Path, mask: int = IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE):
        self.fd = -1
        self.wd = -1
        try:
            libc = _load_libc()
            try:
                fd = _SPARE.pop()  # atomic: no two watches share an instance
            except IndexError:
                fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        except (OSError, AttributeError):
            return
        if fd < 0:
            return
        _drain(fd)  # records of the instance's earlier watch
        wd = libc.inotify_add_watch(fd, os.fsencode(str(directory)), mask)
        if wd < 0:
            _give_back(fd)
            return
        self.fd, self.wd = fd, wd

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
                wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
                start = offset + _HEADER.size
                if wd == self.wd and not mask & IN_IGNORED:
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
        """Remove the watch; the instance is kept for the next watch (see ``_SPARE``)."""
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            try:
                _load_libc().inotify_rm_watch(fd, self.wd)
            except (OSError, AttributeError):
                pass
            _give_back(fd)

    def __enter__(self) -> DirWatch:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _give_back(fd: int) -> None:
    if len(_SPARE) < _SPARE_MAX:
        _SPARE.append(fd)
    else:
        os.close(fd)
