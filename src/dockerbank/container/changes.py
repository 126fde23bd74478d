"""``docker diff``: what a container changed, read from its overlayfs upper directory.

Rules as Docker 20.10 with overlay2 shows them (checked against ``docker diff`` on this host):
a whiteout (char device 0/0) is ``D``; a path that exists in a lower layer is ``C`` (a
directory whose size, mode and mtime equal the lower one is not a change by itself), anything
else ``A``; the parent of an ``A``/``D`` is reported ``C``; a directory made opaque (removed
and made again) is ``C`` with a ``D`` for each lower entry it now hides. Docker prints in
map order (random); we sort by path, parents before children.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

from dockerbank.image.unpack import OPAQUE_XATTR

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


def changes(upper_dir: Path, lower: Sequence[Path] | LowerView) -> list[Change]:
    """The changes recorded in ``upper_dir``, sorted by path (the container's own layer).

    ``lower`` is the overlay lower directories (top first, as given to the mount) or any
    object with ``lstat(path)`` and ``listdir(path)`` for container paths like ``/etc/x``.
    """
    view = LowerDirs([Path(p) for p in lower]) if isinstance(lower, Sequence) else lower
    found: dict[str, str] = {}
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
            kind = _kind(info, path, view)
            if stat.S_ISDIR(info.st_mode):
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except (FileNotFoundError, NotADirectoryError):
                    child = None  # removed meanwhile (the container is running)
                if child is not None:
                    listing = _listing(child)
                    stack.append((child, path, iter(listing)))
                    if _getxattr(fd, name, OPAQUE_XATTR) == b"y":
                        present = {n for n, _ in listing}
                        for hidden in view.listdir(path):
                            if hidden not in present:
                                found[f"{path}/{hidden}"] = "D"
                        kind = kind or "C"
            if kind is None:
                continue
            found[path] = kind
    finally:
        for fd, *_ in stack:
            os.close(fd)
    # the parent of an addition or deletion is a modification (Docker's rule)
    for path, kind in list(found.items()):
        parent = path.rsplit("/", 1)[0]
        if kind in ("A", "D") and parent and parent not in found:
            found[parent] = "C"
    return [Change(found[path], path) for path in sorted(found, key=os.fsencode)]


def _kind(info: os.stat_result, path: str, view: LowerView) -> str | None:
    mode = info.st_mode
    if stat.S_ISCHR(mode) and info.st_rdev == 0:
        return "D"
    below = view.lstat(path)
    if below is None:
        return "A"
    if stat.S_ISDIR(mode) and stat.S_ISDIR(below.st_mode):
        if (below.st_size == info.st_size and below.st_mode == info.st_mode
                and int(below.st_mtime) == int(info.st_mtime)):
            return None  # only a parent of changes; they add it as C if needed
    return "C"


class LowerView(Protocol):
    """What the image below the container has at a container path."""

    def lstat(self, path: str) -> os.stat_result | None: ...

    def listdir(self, path: str) -> list[str]: ...


class LowerDirs:
    """The merged view of overlay lower dirs (top first), resolved like overlayfs does.

    Paths are looked up component by component, and only in the layers where every parent
    is a real directory, so a symlink inside a layer is never followed on the host.
    """

    def __init__(self, dirs: list[Path]):
        self.dirs = dirs

    def _lstat(self, index: int, rel: str) -> os.stat_result | None:
        try:
            return os.lstat(self.dirs[index] / rel)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _is_opaque(self, index: int, rel: str) -> bool:
        try:
            return os.getxattr(self.dirs[index] / rel, OPAQUE_XATTR, follow_symlinks=False) == b"y"
        except OSError:
            return False

    def _lookup(self, parts: list[str]) -> tuple[os.stat_result | None, list[int]]:
        """(lstat of the merged entry, the layers that merge into it if it is a directory)."""
        active = list(range(len(self.dirs)))
        first: os.stat_result | None = None
        rel = ""
        for part in parts:
            rel = f"{rel}/{part}" if rel else part
            merged: list[int] = []
            first = None
            for index in active:
                info = self._lstat(index, rel)
                if info is None:
                    continue
                if stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
                    break  # whited out here: hidden in this layer and all below
                if first is None:
                    first = info
                if not stat.S_ISDIR(info.st_mode) or not stat.S_ISDIR(first.st_mode):
                    break  # a non-directory ends the merge
                merged.append(index)
                if self._is_opaque(index, rel):
                    break
            if first is None:
                return None, []
            active = merged
        return first, active

    def lstat(self, path: str) -> os.stat_result | None:
        parts = [p for p in path.split("/") if p]
        if not parts:
            return None
        return self._lookup(parts)[0]

    def listdir(self, path: str) -> list[str]:
        """Names in directory ``path`` of the merged lower layers."""
        parts = [p for p in path.split("/") if p]
        info, active = self._lookup(parts) if parts else (None, list(range(len(self.dirs))))
        if parts and (info is None or not stat.S_ISDIR(info.st_mode)):
            return []
        rel = "/".join(parts)
        names: set[str] = set()
        seen: set[str] = set()
        for index in active:
            try:
                with os.scandir(self.dirs[index] / rel if rel else self.dirs[index]) as entries:
                    for entry in entries:
                        if entry.name in seen:
                            continue
                        seen.add(entry.name)
                        found = entry.stat(follow_symlinks=False)
                        if not (stat.S_ISCHR(found.st_mode) and found.st_rdev == 0):
                            names.add(entry.name)
            except (FileNotFoundError, NotADirectoryError):
                continue
        return sorted(names)


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
