"""Bridges between blocking engine code and aiohttp streams: request bodies to temporary files,
file descriptors written by a worker thread to a streamed response."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from dockerbank.api import errors as api_errors

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import Any

    from dockerbank.engine import Engine


@asynccontextmanager
async def body_file(request: web.Request) -> AsyncIterator[str]:
    """The request body spooled to a temporary file in the store's tmp dir (removed afterwards)."""
    from dockerbank.api.base import CONFIG

    tmp_dir = request.app[CONFIG].tmp_dir
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix="api-body-", dir=tmp_dir)
    loop = asyncio.get_running_loop()
    try:
        with os.fdopen(fd, "wb") as handle:
            async for chunk in request.content.iter_chunked(1 << 20):
                await loop.run_in_executor(None, handle.write, chunk)
        yield path
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


async def fd_response(request: web.Request, producer: Callable[[Engine, int], Any],
                      content_type: str, headers: dict[str, str] | None = None) -> web.StreamResponse:
    """Run ``producer(engine, write_fd)`` in a worker thread and stream what it writes.

    Errors before the first byte become a normal error reply; later ones end the stream early
    (the client sees a short archive, as with dockerd).
    """
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()

    from dockerbank.api.base import engine_call

    def produce(engine):
        try:
            return producer(engine, write_fd)
        finally:
            os.close(write_fd)

    work = engine_call(request, produce)
    try:
        first = await loop.run_in_executor(None, os.read, read_fd, 1 << 20)
        if not first:
            await work  # raises the producer's error, if any
        resp = web.StreamResponse(headers={"Content-Type": content_type, **(headers or {})})
        await resp.prepare(request)
        while first:
            await resp.write(first)
            first = await loop.run_in_executor(None, os.read, read_fd, 1 << 20)
        try:
            await work
        except Exception:  # headers are gone: the short stream is the error signal
            pass
        await resp.write_eof()
        return resp
    finally:
        os.close(read_fd)


async def streamed_job(request: web.Request, job: Callable[[Engine, Callable[[dict], None]], Any]) -> web.StreamResponse:
    """A JSON-lines endpoint (pull, push, load, import, build): ``job(emit)`` runs in a worker thread,
    each ``emit(obj)`` is one line. A failure before the first line (a refused push, an unknown
    image) is answered with its own status, as dockerd does; a later one ends the stream with
    ``error``/``errorDetail``."""
    from dockerbank.api.base import LineQueue, engine_call

    lines = LineQueue(asyncio.get_running_loop())
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    work = engine_call(request, lambda engine: job(engine, lines.put))
    try:
        await lines.drain_into(resp, work, request)
    except Exception as exc:
        if not resp.prepared:
            raise  # nothing sent yet: the error middleware answers with the error's status
        await resp.write(api_errors.stream_error_line(exc))
    await resp.write_eof()
    return resp
