"""Docker's hijacked connections (attach, exec start): ``Upgrade: tcp`` -> ``101 UPGRADED``, then
the raw TCP stream carries the process's stdin one way and its output the other way.

Output is multiplexed with Docker's 8-byte header (stream, 0, 0, 0, big-endian length) when the
process has no TTY, raw with one. A client's half-close (``CloseWrite`` after stdin ended) closes
only the process's stdin: the output keeps flowing until the process ends.
"""

from __future__ import annotations

import asyncio
import socket
import struct

from aiohttp import web

from dockerbank.host.inflight import following
from dockerbank.runtime.conmon import BUF_SIZE, STDERR, output_frames

STREAM_STDOUT, STREAM_STDERR = 1, 2


def frame(stream: int, data: bytes) -> bytes:
    """One multiplexed frame (pure)."""
    return struct.pack(">BxxxL", stream, len(data)) + data


class RawStreamResponse(web.StreamResponse):
    """A response whose body is the raw connection: no chunking, no length, closed at the end."""

    _length_check = False


class _Feed:
    """Receives the client's bytes after the upgrade (aiohttp's payload-parser interface)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def feed_data(self, data: bytes, *args):
        self.queue.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self.queue.put_nowait(b"")


async def upgrade(request: web.Request, tty: bool) -> tuple[RawStreamResponse, _Feed]:
    """Answer ``101 UPGRADED`` (or 200 for a client that asked for no upgrade) and take the connection."""
    upgraded = request.headers.get("Upgrade", "").lower() == "tcp"
    content = "application/vnd.docker.raw-stream" if tty else "application/vnd.docker.multiplexed-stream"
    resp = RawStreamResponse(status=101 if upgraded else 200, reason="UPGRADED" if upgraded else "OK")
    resp.headers["Content-Type"] = content
    if upgraded:
        resp.headers["Connection"] = "Upgrade"
        resp.headers["Upgrade"] = "tcp"
    resp.force_close()
    await resp.prepare(request)
    request["hijacked"] = True
    following(request)   # attached until the process ends: a stop of the service ends the stream
    feed = _Feed()
    protocol = request.protocol
    if upgraded:
        # aiohttp types set_parser for its WebSocketReader; it only calls feed_data/feed_eof
        protocol.set_parser(feed)  # type: ignore[arg-type]

    transport = request.transport
    if transport is not None:
        transport.set_protocol(_HalfCloseProtocol(protocol, feed))
    return resp, feed


class _HalfCloseProtocol(asyncio.Protocol):
    """Wraps aiohttp's protocol for the hijacked connection: the client's EOF ends stdin only,
    the transport stays open for the output (aiohttp's handler would close it)."""

    def __init__(self, inner, feed: _Feed):
        self.inner, self.feed = inner, feed

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool:
        self.feed.feed_eof()
        return True

    def connection_lost(self, exc) -> None:
        self.feed.feed_eof()
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


async def pump(request: web.Request, resp: RawStreamResponse, feed: _Feed, sock: socket.socket, *, tty: bool,
               stdin: bool, stdout: bool = True, stderr: bool = True) -> None:
    """Copy conmon's attach socket to the client and the client's bytes to the socket until the
    output ends (the process exited) or the client went away."""
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    transport = request.transport

    async def client_to_process() -> None:
        while True:
            data = await feed.queue.get()
            if not data:
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            if stdin:
                try:
                    await loop.sock_sendall(sock, data)
                except OSError:
                    return

    writer = asyncio.ensure_future(client_to_process())
    try:
        while True:
            try:
                data = await loop.sock_recv(sock, BUF_SIZE)
            except (ConnectionResetError, OSError):
                data = b""
            if not data:
                break
            if transport is None or transport.is_closing():
                break
            is_err = data[0] == STDERR
            payload = data[1:]
            if (is_err and not stderr) or (not is_err and not stdout) or not payload:
                continue
            out = payload if tty else frame(STREAM_STDERR if is_err else STREAM_STDOUT, payload)
            transport.write(out)
            if transport.get_write_buffer_size() > 1 << 20:
                await asyncio.sleep(0.01)
    finally:
        writer.cancel()
        sock.close()


def close(request: web.Request) -> None:
    transport = request.transport
    if transport is not None and not transport.is_closing():
        transport.close()


async def pump_websocket(ws: web.WebSocketResponse, sock: socket.socket, *, stdin: bool, stdout: bool = True,
                         stderr: bool = True) -> None:
    """``attach/ws``: conmon's attach socket to binary websocket messages (raw, no multiplexing, as
    dockerd sends them), the client's messages (text or binary) to the process's stdin."""
    from aiohttp import WSMsgType

    loop = asyncio.get_running_loop()
    sock.setblocking(False)

    async def client_to_process() -> None:
        async for message in ws:
            if message.type not in (WSMsgType.BINARY, WSMsgType.TEXT) or not stdin:
                continue
            data = message.data.encode() if isinstance(message.data, str) else message.data
            try:
                await loop.sock_sendall(sock, data)
            except OSError:
                return

    reader = asyncio.ensure_future(client_to_process())
    try:
        async for is_err, payload in output_frames(sock):
            if ws.closed:
                break
            if (is_err and stderr) or (not is_err and stdout):
                await ws.send_bytes(payload)
    finally:
        reader.cancel()
        sock.close()
