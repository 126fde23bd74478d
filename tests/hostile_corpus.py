"""A corpus of hostile and broken layer tarballs, built in Python at test time.

Each case aims at a sentinel directory ``outside`` that the unpacker must never touch, with
names computed so that a naive extractor (``tarfile.extractall`` without a filter) really
would write into it. ``error`` is the class the unpacker must raise, or None when the
archive is neutralised the way Docker/containerd do it (then ``inside`` lists paths that
must exist below the destination afterwards).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from dockerbank.errors import CorruptData, HostileArchive

MARK = b"pwned by a hostile layer\n"
ESCAPE = "../" * 24  # more levels than any destination is deep: a naive join leaves it


class TarBuilder:
    """Small helper writing exactly the entries given, hostile names included."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buffer, mode="w", format=tarfile.PAX_FORMAT)

    def _info(self, name: str, kind: bytes, mode: int = 0o644) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = mode
        info.mtime = 1_600_000_000
        return info

    def file(self, name: str, data: bytes = MARK, mode: int = 0o644, pax: dict | None = None) -> "TarBuilder":
        info = self._info(name, tarfile.REGTYPE, mode)
        info.size = len(data)
        info.pax_headers = dict(pax or {})
        self.tar.addfile(info, io.BytesIO(data))
        return self

    def dir(self, name: str, mode: int = 0o755) -> "TarBuilder":
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, mode))
        return self

    def symlink(self, name: str, target: str) -> "TarBuilder":
        info = self._info(name, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self.tar.addfile(info)
        return self

    def hardlink(self, name: str, target: str) -> "TarBuilder":
        info = self._info(name, tarfile.LNKTYPE)
        info.linkname = target
        self.tar.addfile(info)
        return self

    def chardev(self, name: str, major: int = 1, minor: int = 3) -> "TarBuilder":
        info = self._info(name, tarfile.CHRTYPE, 0o666)
        info.devmajor, info.devminor = major, minor
        self.tar.addfile(info)
        return self

    def bytes(self) -> bytes:
        self.tar.close()
        return self.buffer.getvalue()


@dataclass
class Case:
    name: str
    data: bytes
    error: type[Exception] | None
    inside: list[str] = field(default_factory=list)
    compressed: bool = False  # data is gzip: wrap it in a decompressor before unpacking

    def stream(self) -> io.BufferedIOBase:
        raw = io.BytesIO(self.data)
        return gzip.GzipFile(fileobj=raw, mode="rb") if self.compressed else raw


def valid_tar() -> bytes:
    return TarBuilder().dir("etc").file("etc/hostname", b"x" * 4000).file("etc/motd", b"hi\n").bytes()


def build_corpus(outside: Path) -> list[Case]:
    """The hostile cases aimed at the existing directory ``outside`` (an absolute path)."""
    out_rel = str(outside).lstrip("/")  # the sentinel as a name inside the destination
    escape = ESCAPE + out_rel
    good = valid_tar()
    cases = [
        Case("traversal", TarBuilder().file(f"{escape}/pwned").bytes(), HostileArchive),
        Case("traversal-inner", TarBuilder().dir("a").file(f"a/../{escape}/pwned").bytes(), HostileArchive),
        Case("absolute", TarBuilder().file(f"{outside}/pwned").bytes(), None, [f"{out_rel}/pwned"]),
        Case("absolute-dotdot", TarBuilder().file(f"/../../{out_rel}/pwned").bytes(), None,
             [f"{out_rel}/pwned"]),
        Case("symlink-write-through",
             TarBuilder().symlink("a", str(outside)).file("a/pwned").bytes(), None, [f"{out_rel}/pwned"]),
        Case("symlink-relative-escape",
             TarBuilder().symlink("a", escape).file("a/pwned").bytes(), None, [f"{out_rel}/pwned"]),
        Case("symlink-dotdot-chain",
             TarBuilder().symlink("up", "..").symlink("a", "up/up/up/b").symlink("b", "up/" + escape)
             .file("a/pwned").bytes(), None, [f"{out_rel}/pwned"]),
        Case("symlink-loop", TarBuilder().symlink("a", "b").symlink("b", "a").file("a/pwned").bytes(),
             HostileArchive),
        Case("symlink-then-dir-entry",
             TarBuilder().symlink("a", str(outside)).dir("a").file("a/pwned").bytes(), None, ["a/pwned"]),
        Case("dir-swapped-for-symlink-midway",
             TarBuilder().dir("a").file("a/x").symlink("a", str(outside)).file("a/pwned").bytes(), None,
             [f"{out_rel}/pwned"]),
        Case("overwrite-symlink-last-component",
             TarBuilder().symlink("f", f"{outside}/victim").file("f").bytes(), None, ["f"]),
        Case("hardlink-absolute-host-file", TarBuilder().hardlink("passwd", "/etc/passwd").bytes(), HostileArchive),
        Case("hardlink-traversal", TarBuilder().hardlink("passwd", ESCAPE + "etc/passwd").bytes(), HostileArchive),
        Case("hardlink-missing", TarBuilder().hardlink("x", "nothere").bytes(), HostileArchive),
        Case("hardlink-through-symlink",
             TarBuilder().symlink("a", str(outside)).hardlink("x", "a/victim").bytes(), HostileArchive),
        Case("hardlink-to-directory", TarBuilder().dir("d").hardlink("x", "d").bytes(), HostileArchive),
        Case("device-traversal", TarBuilder().chardev(f"{escape}/evil").bytes(), HostileArchive),
        Case("device-through-symlink",
             TarBuilder().symlink("dev", str(outside)).chardev("dev/evil").bytes(), None, [f"{out_rel}/evil"]),
        Case("device-absolute", TarBuilder().chardev(f"{outside}/evil").bytes(), None, [f"{out_rel}/evil"]),
        Case("whiteout-dotdot", TarBuilder().dir("sub").file("sub/.wh...", b"").bytes(), HostileArchive),
        Case("whiteout-dot", TarBuilder().file(".wh..", b"").bytes(), HostileArchive),
        Case("whiteout-empty", TarBuilder().file("sub/.wh.", b"").bytes(), HostileArchive),
        Case("whiteout-traversal", TarBuilder().file(f"{escape}/.wh.victim", b"").bytes(), HostileArchive),
        Case("root-replaced-by-file", TarBuilder().file(".", b"x").bytes(), HostileArchive),
        Case("huge-name-component", TarBuilder().file("a" * 300).bytes(), HostileArchive),
        Case("overlay-xattr-smuggled",
             TarBuilder().dir("d").file("d/f", pax={"SCHILY.xattr.trusted.overlay.redirect": "/etc"}).bytes(),
             None, ["d/f"]),
        Case("truncated-gzip", _gzip(good)[: len(_gzip(good)) // 2], CorruptData, compressed=True),
        Case("truncated-tar-in-data", good[:1700], CorruptData),
        Case("truncated-tar-in-header", good[:512 * 4 + 100], CorruptData),
        Case("truncated-tar-no-end-marker", _without_end(good), CorruptData),
        Case("garbage", bytes(range(1, 256)) * 8, CorruptData),
        Case("garbage-after-entry", _without_end(good) + b"\x01garbage" * 64 + bytes(512), CorruptData),
        Case("empty-stream", b"", CorruptData),
        Case("pax-header-bomb", _pax_bomb(), HostileArchive),
    ]
    return cases


def _pax_bomb() -> bytes:
    """A PAX header claiming 4 GiB: a reader that trusts it allocates before it fails."""
    header = tarfile.TarInfo("././@PaxHeader")
    header.type = tarfile.XHDTYPE
    header.size = 4 << 30
    return header.tobuf(format=tarfile.USTAR_FORMAT) + b"30 path=" + b"a" * 600


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _without_end(data: bytes) -> bytes:
    """The tar without its end-of-archive zero blocks (and record padding)."""
    end = len(data)
    while end >= 512 and data[end - 512:end] == bytes(512):
        end -= 512
    return data[:end]


def snapshot(directory: Path) -> list[tuple[str, int, int, bytes]]:
    """Everything below ``directory`` (no link followed): to prove nothing changed there."""
    found = []
    for current, dirs, files in os.walk(directory, followlinks=False):
        for name in sorted(dirs + files):
            path = os.path.join(current, name)
            info = os.lstat(path)
            content = b""
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as handle:
                    content = handle.read()
            found.append((os.path.relpath(path, directory), info.st_mode, info.st_ino, content))
    return sorted(found)

def describe(root: Path, *, mtimes: bool = True, skip_xattrs: tuple[str, ...] = ("security.selinux",)) -> dict:
    """path -> (type, mode, uid, gid, size, sha256, link target, rdev, xattrs, mtime, hardlink group)."""
    result: dict[str, tuple] = {}
    groups: dict[tuple[int, int], str] = {}
    for current, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(current, name)
            rel = os.path.relpath(path, root)
            info = os.lstat(path)
            mode = info.st_mode
            digest = ""
            if stat.S_ISREG(mode):
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
            target = os.readlink(path) if stat.S_ISLNK(mode) else ""
            try:
                names = os.listxattr(path, follow_symlinks=False)
            except OSError:
                names = []
            xattrs = tuple(sorted(
                (n, os.getxattr(path, n, follow_symlinks=False)) for n in names if n not in skip_xattrs
            ))
            group = ""
            if not stat.S_ISDIR(mode) and info.st_nlink > 1:
                group = groups.setdefault((info.st_dev, info.st_ino), rel)
            size = info.st_size if stat.S_ISREG(mode) else 0
            mtime = int(info.st_mtime) if mtimes and not stat.S_ISLNK(mode) else 0
            result[rel] = (stat.S_IFMT(mode), stat.S_IMODE(mode), info.st_uid, info.st_gid, size, digest,
                           target, info.st_rdev, xattrs, mtime, group)
    return result
