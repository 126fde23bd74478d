"""Where an engine method's output goes: a sink the caller passes (a terminal, an HTTP stream,
a buffer in a test). The engine never writes to fds 1/2 itself.

A sink has two methods, ``write(data: bytes)`` and ``close()``; any object with them will do
(Podman's entities pass io.Writers the same way).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Protocol

    class Sink(Protocol):
        """The output protocol of engine methods."""

        def write(self, data: bytes) -> object: ...

        def close(self) -> None: ...


class FdSink:
    """Writes to a file descriptor the caller owns (the CLI's stdout or stderr); ``close`` leaves
    it open. A reader that went away (a closed pipe) ends the writing silently, as ``docker logs | head``."""

    def __init__(self, fd: int):
        self.fd = fd
        self.broken = False

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view and not self.broken:
            try:
                written = os.write(self.fd, view)
            except BrokenPipeError:
                self.broken = True
                return
            view = view[written:]

    def close(self) -> None:
        pass


class BufferSink:
    """Collects what is written (tests, small replies)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.chunks.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def getvalue(self) -> bytes:
        return b"".join(self.chunks)


class CallbackSink:
    """Hands each chunk to a function (an HTTP stream's queue, a line framer)."""

    def __init__(self, write: Callable[[bytes], object], close: Callable[[], object] | None = None):
        self._write, self._close = write, close

    def write(self, data: bytes) -> None:
        self._write(data)

    def close(self) -> None:
        if self._close is not None:
            self._close()


class LineSink:
    """Splits what is written into lines for ``emit(line)`` (without the newline); ``close``
    hands on a last partial line. The build's progress lines are made this way."""

    def __init__(self, emit: Callable[[str], object]):
        self.emit = emit
        self.buffer = b""

    def write(self, data: bytes) -> None:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            self.emit(line.decode(errors="replace"))

    def close(self) -> None:
        if self.buffer:
            rest, self.buffer = self.buffer, b""
            self.emit(rest.decode(errors="replace"))
