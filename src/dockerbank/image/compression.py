"""Layer compression: detect gzip/zstd/plain by magic bytes and open a decompressing reader."""

from __future__ import annotations

import gzip
import io

from dockerbank.errors import CorruptData

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from dockerbank.streams import Reader, Source

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

MEDIA_TAR = "application/vnd.oci.image.layer.v1.tar"
MEDIA_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_TAR_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"


def detect(head: bytes) -> str:
    """Return 'gzip', 'zstd' or 'none' from the first bytes of a stream."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


def media_type_for(kind: str) -> str:
    return {"gzip": MEDIA_TAR_GZIP, "zstd": MEDIA_TAR_ZSTD, "none": MEDIA_TAR}[kind]


def open_decompressed(stream: Reader) -> tuple[Source, str]:
    """Wrap ``stream`` so that reads return the uncompressed tar; also return the kind found."""
    buffered = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(_Raw(stream))
    kind = detect(buffered.peek(4)[:4])
    if kind == "gzip":
        return gzip.GzipFile(fileobj=buffered, mode="rb"), kind
    if kind == "zstd":
        import zstandard  # lazily: only zstd layers pay for the import

        return zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True), kind
    return buffered, kind


class _Raw(io.RawIOBase):
    """Adapt any object with ``read`` to RawIOBase so it can be buffered and peeked."""

    def __init__(self, inner: Reader):
        self.inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def read_all_checked(reader: Reader, sink, chunk: int = 1 << 20) -> None:
    """Copy a decompressing reader into ``sink`` callable; a broken stream becomes CorruptData."""
    try:
        while data := reader.read(chunk):
            sink(data)
    except (OSError, EOFError, ValueError) as exc:
        raise CorruptData(f"corrupt compressed layer: {exc}") from exc
