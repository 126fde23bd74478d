"""``GET /events``: stored events since ``since``, then (without ``until``) new ones as they come."""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from dockerbank.api.base import qfilters
from dockerbank.errors import InvalidArgument

FILTERS = {"type", "event", "action", "container", "image", "volume", "network", "label"}


def parse_time_ns(value: str | None, now_ns: int) -> int | None:
    """``since``/``until``: Unix seconds (with fraction) as the docker CLI sends them (pure)."""
    if value in (None, ""):
        return None
    try:
        return int(float(value) * 1_000_000_000)
    except ValueError as exc:
        raise InvalidArgument(f"invalid time: {value}") from exc


async def events(request: web.Request) -> web.StreamResponse:
    from dockerbank.events.log import EventLog, matches

    filters = qfilters(request)
    unknown = set(filters) - FILTERS
    if unknown:
        raise InvalidArgument(f"invalid filter '{min(unknown)}'")
    now = time.time_ns()
    since = parse_time_ns(request.query.get("since"), now)
    until = parse_time_ns(request.query.get("until"), now)
    log = EventLog.of(request.app["config"])
    loop = asyncio.get_running_loop()
    stored, offset = await loop.run_in_executor(None, lambda: log.read(since if since is not None else now, until))
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    for item in stored:
        if matches(item, filters):
            await resp.write(json.dumps(item).encode() + b"\n")
    if until is not None and until <= time.time_ns():
        await resp.write_eof()
        return resp
    batches = log.follow(offset)
    while request.transport is not None and not request.transport.is_closing():
        batch = await loop.run_in_executor(None, next, batches)
        for item in batch:
            if until is not None and item.get("timeNano", 0) > until:
                await resp.write_eof()
                return resp
            if matches(item, filters):
                await resp.write(json.dumps(item).encode() + b"\n")
        if until is not None and time.time_ns() > until:
            break
        if not batch:
            await asyncio.sleep(0.2)
    await resp.write_eof()
    return resp


ROUTES = [("GET", "/events", events)]
