"""Filesystem helpers shared by volumes, containers, backups and system df: sizes and scoped paths."""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dockerbank.errors import InvalidArgument


@contextmanager
def flocked(path: Path, how: int = fcntl.LOCK_EX) -> Iterator[None]:
    """Hold an flock (``how``: LOCK_EX or LOCK_SH) on ``path`` for the block; the file is created
    0600 and its directory as needed. Closing the descriptor releases the lock, also on error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, how)
        yield
    finally:
        os.close(fd)


@contextmanager
def flocked_dir(path: Path, how: int = fcntl.LOCK_EX) -> Iterator[None]:
    """Hold an flock on the directory ``path`` itself for the block: no lock file among the
    entries of a directory whose entries mean something (the layers, one per directory)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, how)
        yield
    finally:
        os.close(fd)


def tree_size(path: Path) -> int:
    """Bytes of the regular files below ``path``, hard links counted once (docker's directory.Size)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames + dirnames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if st.st_nlink > 1:
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def scoped_path(rootfs: Path, path: str, max_links: int = 255) -> Path:
    """``rootfs`` joined with ``path`` as the container would see it: symlinks on the way
    are followed, but an absolute link or ``..`` never leaves ``rootfs`` (securejoin)."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = rootfs.joinpath(*resolved, part)
        try:
            target = os.readlink(candidate)
        except OSError:  # not a symlink, or missing: take it as it is
            resolved.append(part)
            continue
        links += 1
        if links > max_links:
            raise InvalidArgument(f"too many levels of symbolic links resolving {path} in the image")
        if target.startswith("/"):
            resolved = []
        parts = [p for p in target.split("/") if p not in ("", ".")] + parts
    return rootfs.joinpath(*resolved)


def umask_of(status_text: str) -> int | None:
    """The ``Umask:`` line of a /proc/<pid>/status text (pure), None without one."""
    for line in status_text.splitlines():
        if line.startswith("Umask:"):
            try:
                return int(line.split()[1], 8)
            except (IndexError, ValueError):
                return None
    return None


def current_umask() -> int:
    """This process's umask, read from /proc (Linux >= 4.7) without changing it: ``os.umask`` can
    only read by setting, which would change it for every thread meanwhile. 0o022 if unreadable."""
    try:
        with open("/proc/self/status") as handle:
            mask = umask_of(handle.read())
    except OSError:
        mask = None
    return 0o022 if mask is None else mask
