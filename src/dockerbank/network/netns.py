"""Persistent network namespaces: a bind mount of an nsfs file, like ``ip netns add``.

Done in-process (ctypes: unshare + mount in a short-lived thread) because network namespace
membership is per thread: the thread that unshares dies, the bind mount keeps the namespace.
That costs well under a millisecond, against ~3 ms for an ``ip netns add`` subprocess.
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
from pathlib import Path

from dockerbank.errors import RuntimeFailure

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MNT_DETACH = 0x2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]


def create(path: Path) -> Path:
    """Create a new, empty network namespace pinned at ``path`` (which must not be pinned yet)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_pinned(path):
        raise RuntimeFailure(f"network namespace {path} already exists")
    path.touch(exist_ok=True)  # the bind-mount target
    failure: list[str] = []

    def pin() -> None:
        if _libc.unshare(CLONE_NEWNET) != 0:
            failure.append(f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())}")
            return
        source = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
        if _libc.mount(source, str(path).encode(), None, MS_BIND, None) != 0:
            failure.append(f"bind mount to {path}: {os.strerror(ctypes.get_errno())}")

    worker = threading.Thread(target=pin, name="netns-create")
    worker.start()
    worker.join()
    if failure:
        path.unlink(missing_ok=True)
        raise RuntimeFailure(f"cannot create network namespace: {failure[0]}")
    return path


def is_pinned(path: Path) -> bool:
    """Whether ``path`` is a bind mount of a network namespace (an nsfs inode)."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as handle:
            target = str(path)
            return any(line.split()[4] == target and " nsfs " in line for line in handle)
    except OSError:
        return False


def remove(path: Path) -> None:
    """Unpin and delete a namespace file; a missing or unmounted file is not an error."""
    if _libc.umount2(str(path).encode(), MNT_DETACH) != 0:
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOENT):
            raise RuntimeFailure(f"cannot unmount network namespace {path}: {os.strerror(code)}")
    try:
        path.unlink()
    except FileNotFoundError:
        pass
