"""A streaming tar writer on a raw file descriptor that copies file bodies in the kernel.

Image archives are a handful of large members; their bytes already sit in blob files.
``os.sendfile`` moves them to the output (a file or a pipe) without passing them through
Python, which is what keeps ``save`` as fast as the disk.
"""

from __future__ import annotations

import os
import tarfile

from dockerbank.errors import CorruptData

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from dockerbank.streams import Reader

BLOCK = 512
COPY_CHUNK = 8 << 20


class TarWriter:
    """Write ustar members to ``fd``; deterministic headers (mtime, owner fixed) so equal input gives equal bytes."""

    def __init__(self, fd: int, mtime: int = 0):
        self.fd = fd
        self.mtime = mtime
        self.dirs: set[str] = set()

    def _write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def _header(self, name: str, size: int, kind: bytes = tarfile.REGTYPE, mode: int = 0o644) -> None:
        info = tarfile.TarInfo(name)
        info.size = size
        info.type = kind
        info.mode = mode
        info.mtime = self.mtime
        info.uname = info.gname = "root"
        self._write(info.tobuf(format=tarfile.PAX_FORMAT))

    def _pad(self, size: int) -> None:
        if size % BLOCK:
            self._write(b"\0" * (BLOCK - size % BLOCK))

    def add_dir(self, name: str) -> None:
        """A directory entry (written once however often it is asked for)."""
        name = name.rstrip("/") + "/"
        if name in self.dirs:
            return
        self.dirs.add(name)
        self._header(name, 0, tarfile.DIRTYPE, 0o755)

    def add_bytes(self, name: str, data: bytes) -> None:
        self._header(name, len(data))
        self._write(data)
        self._pad(len(data))

    def add_file(self, name: str, path: str, size: int) -> None:
        """A member whose body is the file at ``path`` (exactly ``size`` bytes), copied by sendfile."""
        self._header(name, size)
        with open(path, "rb", buffering=0) as src:
            if os.fstat(src.fileno()).st_size != size:
                raise CorruptData(f"stored blob {path} has the wrong size")
            offset = 0
            try:
                while offset < size:
                    sent = os.sendfile(self.fd, src.fileno(), offset, min(size - offset, 1 << 30))
                    if sent == 0:
                        break
                    offset += sent
            except OSError:
                pass  # no sendfile for this pair of files: copy the rest (from ``offset``) by hand
            src.seek(offset)
            while offset < size:
                data = src.read(min(size - offset, COPY_CHUNK))
                if not data:
                    raise CorruptData(f"stored blob {path} is truncated")
                self._write(data)
                offset += len(data)
        self._pad(size)

    def add_stream(self, name: str, stream: Reader, size: int) -> None:
        """A member read from ``stream``, which must yield exactly ``size`` bytes (e.g. a decompressor)."""
        self._header(name, size)
        left = size
        while left > 0:
            data = stream.read(min(left, COPY_CHUNK))
            if not data:
                raise CorruptData(f"{name}: stored layer is shorter than recorded ({size} bytes)")
            self._write(data)
            left -= len(data)
        if stream.read(1):
            raise CorruptData(f"{name}: stored layer is longer than recorded ({size} bytes)")
        self._pad(size)

    def close(self) -> None:
        """The end-of-archive marker: two zero blocks."""
        self._write(b"\0" * (2 * BLOCK))
