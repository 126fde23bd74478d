"""Content-addressed blob store: ``blobs/sha256/<hex>``, verified on write, renamed into place."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from dockerbank import faults
from dockerbank.errors import CorruptData, NotFound
from dockerbank.oci import digest as dg

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import BinaryIO

    from dockerbank.streams import Reader

CHUNK = 1 << 20


class BlobStore:
    """Blobs named by their sha256; a blob is visible only once complete and verified."""

    def __init__(self, blobs_dir: Path, tmp_dir: Path):
        self.dir = blobs_dir
        self.tmp_dir = tmp_dir

    def path(self, digest: str) -> Path:
        return self.dir / dg.hex_of(digest)

    def has(self, digest: str) -> bool:
        return self.path(digest).exists()

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError as exc:
            raise NotFound(f"blob {digest} not found") from exc

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError as exc:
            raise NotFound(f"blob {digest} not found") from exc

    def read(self, digest: str) -> bytes:
        with self.open(digest) as handle:
            return handle.read()

    def put_bytes(self, data: bytes, expected: str | None = None) -> str:
        """Store ``data``; return its digest. Raise CorruptData if it differs from ``expected``."""
        actual = dg.of_bytes(data)
        if expected and actual != expected:
            raise CorruptData(f"digest mismatch: expected {expected}, got {actual}")
        if not self.has(actual):
            self._commit(lambda handle: handle.write(data), actual)
        return actual

    def put_stream(self, stream: Reader, expected: str | None = None) -> tuple[str, int]:
        """Copy ``stream`` into the store, hashing as it goes; return (digest, size)."""
        self._ensure_dirs()
        verifier = dg.Verifier(expected)
        fd, tmp_name = tempfile.mkstemp(prefix="blob-", dir=self.tmp_dir)
        try:
            with os.fdopen(fd, "wb") as handle:
                while chunk := stream.read(CHUNK):
                    verifier.update(chunk)
                    handle.write(chunk)
            digest = verifier.check()
            faults.point("blob.written")
            os.rename(tmp_name, self.path(digest))
        except BaseException:
            _unlink_quietly(tmp_name)
            raise
        return digest, verifier.size

    def delete(self, digest: str) -> None:
        _unlink_quietly(self.path(digest))

    def all_digests(self) -> list[str]:
        if not self.dir.exists():
            return []
        return ["sha256:" + name for name in os.listdir(self.dir) if dg.is_full_hex(name)]

    def _commit(self, write, digest: str) -> None:
        self._ensure_dirs()
        fd, tmp_name = tempfile.mkstemp(prefix="blob-", dir=self.tmp_dir)
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
            faults.point("blob.written")
            os.rename(tmp_name, self.path(digest))
        except BaseException:
            _unlink_quietly(tmp_name)
            raise

    def _ensure_dirs(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)


def _unlink_quietly(path: str | Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
