"""Room for the state database when a volume has filled the disk.

Volumes live on the root's filesystem, so a container can fill it. SQLite then cannot even open
the database (its WAL index is a new file, and a write to its mapped pages on a full filesystem is
a SIGBUS), and the user could not run the ``volume rm`` or ``prune`` that would free the space.
So a root keeps a small reserve file, allocated while there is room, and gives it up when the
filesystem is (almost) full, before the database is opened: the command that frees space works.
"""

from __future__ import annotations

import os
from pathlib import Path

RESERVE_BYTES = 4 << 20
LOW_WATER = 1 << 20          # below this, the reserve goes back to the filesystem


def free_bytes(path: Path) -> int:
    """Bytes this process may still write on ``path``'s filesystem (root may use the reserved blocks)."""
    st = os.statvfs(path)
    return (st.f_bfree if os.geteuid() == 0 else st.f_bavail) * st.f_frsize


def keep_room(root: Path) -> None:
    """Release the reserve when the filesystem is almost full; recreate it when there is room again."""
    reserve = root / "reserve"
    try:
        free = free_bytes(root)
    except OSError:
        return
    if free < LOW_WATER:
        try:
            os.unlink(reserve)
        except FileNotFoundError:
            pass
        return
    if free < RESERVE_BYTES + 4 * LOW_WATER or reserve.exists():
        return
    tmp = root / "reserve.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.posix_fallocate(fd, 0, RESERVE_BYTES)  # real blocks, not a sparse promise
        finally:
            os.close(fd)
        os.replace(tmp, reserve)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
