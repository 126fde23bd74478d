"""``docker diff``: what a container changed, read from its overlayfs upper directory.

Same rules as moby's ``pkg/archive/changes.go`` with the overlay2 driver: walk the upper dir
depth first (names sorted per directory, the order ``docker diff`` prints); a whiteout
(char device 0/0) or an opaque directory is ``D``; a path that exists in a lower layer is
``C`` (a directory whose size, mode and mtime equal the lower one is not a change by
itself), anything else ``A``; the parent of an ``A``/``D`` is reported ``C`` once, before it.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from dockerbank.image.unpack import OPAQUE_XATTR

LowerLookup = Callable[[str], "os.stat_result | None"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_API_KIND = {"C": 0, "A": 1, "D": 2}


@dataclass(frozen=True)
class Change:
    """One line of ``docker diff``: kind ``A``, ``C`` or ``D`` and an absolute container path."""

    kind: str
    path: str

    def __str__(self) -> str:
        return f"{self.kind} {self.path}"

    @property
    def api_kind(self) -> int:
        """Docker API's numeric kind: 0 modified, 1 added, 2 deleted."""
        return _API_KIND[self.kind]

    def to_api(self) -> dict:
        return {"Path": self.path, "Kind": self.api_kind}


def changes(upper_dir: Path, lower: Sequence[Path] | LowerLookup) -> list[Change]:
    """The changes recorded in ``upper_dir``, in the order ``docker diff`` prints them.

    ``lower`` is either the overlay lower directories (top first, as given to the mount) or a
    callable taking a container path (``/etc/x``) and returning the lstat of what the image
    has there, or None.
    """
    lookup = lower if callable(lower) else LowerDirs(list(lower)).lstat
    result: list[Change] = []
    changed_dirs: set[str] = set()
    root_fd = os.open(upper_dir, _DIR_FLAGS)
    stack = [(root_fd, "", iter(_listing(root_fd)))]
    try:
        while stack:
            fd, prefix, entries = stack[-1]
            entry = next(entries, None)
            if entry is None:
                stack.pop()
                os.close(fd)
                continue
            name, info = entry
            path = prefix + "/" + name
            kind = _kind(fd, name, info, path, lookup)
            if stat.S_ISDIR(info.st_mode):
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except (FileNotFoundError, NotADirectoryError):
                    child = None  # removed meanwhile (the container is running)
                if child is not None:
                    stack.append((child, path, iter(_listing(child))))
                if kind is not None:
                    changed_dirs.add(path)
            if kind is None:
                continue
            if kind in ("A", "D"):
                parent = prefix or "/"
                if parent != "/" and parent not in changed_dirs:
                    result.append(Change("C", parent))
                    changed_dirs.add(parent)
            # the child directory was pushed above; record this entry before its children
            result.append(Change(kind, path))
    finally:
        for fd, *_ in stack:
            os.close(fd)
    return result


def _kind(fd: int, name: str, info: os.stat_result, path: str, lookup: LowerLookup) -> str | None:
    mode = info.st_mode
    if stat.S_ISCHR(mode) and info.st_rdev == 0:
        return "D"
    if stat.S_ISDIR(mode) and _getxattr(fd, name, OPAQUE_XATTR) == b"y":
        return "D"
    below = lookup(path)
    if below is None:
        return "A"
    if stat.S_ISDIR(mode) and stat.S_ISDIR(below.st_mode):
        if (below.st_size == info.st_size and below.st_mode == info.st_mode
                and int(below.st_mtime) == int(info.st_mtime)):
            return None  # only a parent of changes; they add it as C if needed
    return "C"


class LowerDirs:
    """Look paths up in overlay lower dirs (top first) as the merged view would see them."""

    def __init__(self, dirs: list[Path]):
        self.dirs = dirs
        self._opaque: dict[tuple[int, str], bool] = {}

    def lstat(self, path: str) -> os.stat_result | None:
        rel = path.lstrip("/")
        parents = _ancestors(rel)
        for index, directory in enumerate(self.dirs):
            try:
                info = os.lstat(directory / rel)
            except (FileNotFoundError, NotADirectoryError):
                info = None
            if info is not None:
                if stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
                    return None  # whited out in this layer
                return info
            # an opaque parent in this layer hides the layers below it
            if any(self._is_opaque(index, directory, parent) for parent in parents):
                return None
        return None

    def _is_opaque(self, index: int, directory: Path, rel_dir: str) -> bool:
        key = (index, rel_dir)
        if key not in self._opaque:
            try:
                value = os.getxattr(directory / rel_dir, OPAQUE_XATTR, follow_symlinks=False)
            except OSError:
                value = b""
            self._opaque[key] = value == b"y"
        return self._opaque[key]


def _ancestors(rel: str) -> list[str]:
    parts = rel.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _listing(dir_fd: int) -> list[tuple[str, os.stat_result]]:
    with os.scandir(dir_fd) as entries:
        found = [(entry.name, entry.stat(follow_symlinks=False)) for entry in entries]
    found.sort(key=lambda item: os.fsencode(item[0]))
    return found


def _getxattr(dir_fd: int, name: str, attr: str) -> bytes | None:
    try:
        return os.getxattr(f"/proc/self/fd/{dir_fd}/{name}", attr, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOENT):
            return None
        raise
