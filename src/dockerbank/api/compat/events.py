"""``GET /events``: the engine's event stream (engine.events) as docker's JSON lines."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from dockerbank.api.base import CONFIG, qfilters
from dockerbank.host.inflight import following


def _epoch(request: web.Request, name: str) -> float | None:
    """``since``/``until``: Unix seconds with a fraction, as the docker CLI sends them."""
    from dockerbank.container.logs import parse_since

    value = request.query.get(name)
    return None if value in (None, "") else parse_since(value)


async def events(request: web.Request) -> web.StreamResponse:
    from dockerbank.engine import Engine
    from dockerbank.engine.events import EventsOptions

    opts = EventsOptions(since=_epoch(request, "since"), until=_epoch(request, "until"), filters=qfilters(request))
    stop = False
    batches = Engine(request.app[CONFIG]).events(opts, cancelled=lambda: stop)   # reads files only: no database
    loop = asyncio.get_running_loop()
    batch = await loop.run_in_executor(None, next, batches, None)   # a bad filter fails here, before the headers
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    following(request)   # until the client leaves: a stop ends it instead of waiting
    try:
        while batch is not None:
            for item in batch:
                await resp.write(json.dumps(item).encode() + b"\n")
            if request.transport is None or request.transport.is_closing():
                break
            batch = await loop.run_in_executor(None, next, batches, None)
    finally:
        stop = True
    await resp.write_eof()
    return resp


ROUTES = [("GET", "/events", events)]
