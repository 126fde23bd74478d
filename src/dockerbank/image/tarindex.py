"""Random access to the members of an image archive (a plain tar on a seekable file).

``docker save`` and OCI archives are uncompressed tars of a few large members. Reading
their headers once and then reading each member by (offset, size) lets load stream every
layer straight from the archive file without holding it in memory or unpacking the
archive to disk first.
"""

from __future__ import annotations

import io
import os
import posixpath
import tarfile
from dataclasses import dataclass

from dockerbank.errors import CorruptData

_MAX_LINK_HOPS = 16


@dataclass(frozen=True)
class Member:
    """A regular file inside the archive: where its bytes start and how many there are."""

    name: str
    offset: int
    size: int


class TarIndex:
    """The regular files of a tar archive by normalised name, symlinks resolved inside the archive."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.files: dict[str, Member] = {}
        self._links: dict[str, str] = {}
        try:
            with tarfile.open(self.path, mode="r:") as archive:
                for info in archive:
                    name = normalise(info.name)
                    if name is None:
                        continue
                    if info.isreg():
                        self.files[name] = Member(name, info.offset_data, info.size)
                    elif info.issym() or info.islnk():
                        # a symlink is relative to its directory (podman's layer.tar -> ../<diff>.tar);
                        # a hardlink names another member from the root
                        target = info.linkname
                        if info.issym() and not target.startswith("/"):
                            target = posixpath.join(posixpath.dirname(name), target)
                        self._links[name] = target
            size = os.path.getsize(self.path)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise CorruptData(f"invalid archive: {exc}") from exc
        for member in self.files.values():
            if member.offset + member.size > size:
                raise CorruptData(f"invalid archive: {member.name} is truncated")

    def names(self) -> list[str]:
        return sorted(set(self.files) | set(self._links))

    def has(self, name: str) -> bool:
        try:
            self.member(name)
        except CorruptData:
            return False
        return True

    def member(self, name: str) -> Member:
        """The regular file ``name`` names, following symlinks/hardlinks that stay in the archive."""
        current = normalise(name)
        for _ in range(_MAX_LINK_HOPS):
            if current is None:
                break
            if current in self.files:
                return self.files[current]
            target = self._links.get(current)
            if target is None:
                break
            current = normalise(target)
        raise CorruptData(f"invalid archive: {name} not found in the archive")

    def read(self, name: str, limit: int = 64 << 20) -> bytes:
        """The bytes of a small member (manifests, configs, index files)."""
        member = self.member(name)
        if member.size > limit:
            raise CorruptData(f"invalid archive: {name} is implausibly large ({member.size} bytes)")
        with open(self.path, "rb") as handle:
            handle.seek(member.offset)
            data = handle.read(member.size)
        if len(data) != member.size:
            raise CorruptData(f"invalid archive: {name} is truncated")
        return data

    def open(self, name: str) -> MemberReader:
        return MemberReader(self.path, self.member(name))


def normalise(name: str) -> str | None:
    """``./a//b/`` -> ``a/b``; an absolute name counts from the archive's root; None if it leaves the archive."""
    cleaned = posixpath.normpath(name.lstrip("/")) if name else "."
    if cleaned in (".", "..") or cleaned.startswith("../"):
        return None
    return cleaned


class MemberReader(io.RawIOBase):
    """A raw, read-only file over one member's bytes (wrap it in io.BufferedReader for small reads)."""

    def __init__(self, path: str, member: Member):
        super().__init__()
        self.member = member
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._pos = member.offset
        self._left = member.size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._left <= 0:
            return 0
        want = min(len(buffer), self._left)
        count = os.preadv(self._fd, [memoryview(buffer)[:want]], self._pos)
        if count == 0:
            raise CorruptData(f"invalid archive: {self.member.name} is truncated")
        self._pos += count
        self._left -= count
        return count

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()
