"""The byte-stream shapes passed between layers, for type checking only.

Layers hand each other readers that are not files (a hashing or counting wrapper, a decompressor,
a pipe): what a function needs from them is ``read``, so it asks for a :class:`Reader`, not a
``BinaryIO``. Import this module under ``TYPE_CHECKING`` only: it imports ``typing``.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self


class Reader(Protocol):
    """Anything with ``read(size)`` returning bytes (b"" at the end)."""

    def read(self, size: int = ..., /) -> bytes: ...


class ReadsInto(Protocol):
    """A file object that reads into a caller's buffer (``FileIO``, ``BufferedReader``, ``BytesIO``)."""

    def readinto(self, buffer: memoryview, /) -> int | None: ...


class Source(Reader, Protocol):
    """A reader its holder closes, in a ``with`` block or by ``close()``."""

    def close(self) -> object: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None, /) -> object: ...


class Writer(Protocol):
    """Anything with ``write(data)``."""

    def write(self, data: bytes, /) -> object: ...
