"""What every handler shares: running an engine call off the event loop, query parsing, JSON replies.

Each call gets its own ``Engine`` (its own SQLite connection) in a worker thread, exactly as
each ``dockerbank`` CLI process does: the engine is written for many independent callers
guarded by its locks and transactions, so the server adds no second locking scheme.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

from aiohttp import web

from dockerbank.errors import InvalidArgument

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import Any, TypeVar

    from dockerbank.config import Config
    from dockerbank.engine import Engine
    from dockerbank.engine.stateversion import StateVersion

    _Default = TypeVar("_Default", int, None)

API_VERSION = "1.45"
MIN_API_VERSION = "1.24"

# The application's state (api/server.py make_app), typed keys instead of strings
CONFIG: web.AppKey[Config] = web.AppKey("config")
HIJACKS: web.AppKey[dict[str, list[asyncio.Future]]] = web.AppKey("hijacks")
EXITS: web.AppKey[dict[str, int]] = web.AppKey("exits")
EXECS: web.AppKey[dict[str, dict[str, Any]]] = web.AppKey("execs")
LISTS: web.AppKey[VersionedMemo] = web.AppKey("lists")
STATE_VERSION: web.AppKey[StateVersion] = web.AppKey("state_version")


def engine_call(request: web.Request, fn: Callable[[Engine], Any]) -> asyncio.Future[Any]:
    """Run ``fn(engine)`` in a worker thread with a fresh Engine for this root."""
    from dockerbank.engine.workers import in_worker

    return in_worker(request.app[CONFIG], fn)


def qbool(request: web.Request, name: str, default: bool = False) -> bool:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    return value.lower() not in ("0", "false", "no")


# a None default for a TypeVar parameter is what mypy cannot express (python/mypy#3737)
def qint(request: web.Request, name: str, default: _Default = None) -> int | _Default:  # type: ignore[assignment]
    """An integer query parameter; ``default`` (an int, or None) when absent or empty."""
    value = request.query.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise InvalidArgument(f"invalid value for {name}: {value}") from exc


def qfilters(request: web.Request) -> dict[str, list[str]]:
    """``filters={"key":["v"]}`` or the old ``{"key":{"v":true}}`` form -> {key: [values]}."""
    raw = request.query.get("filters")
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidArgument(f"invalid filter: {raw}") from exc
    if data is not None and not isinstance(data, dict):
        raise InvalidArgument(f"invalid filter: {raw}: want a JSON object of filter names")
    out: dict[str, list[str]] = {}
    for key, value in (data or {}).items():
        if isinstance(value, dict):
            out[key] = [k for k, on in value.items() if on]
        elif isinstance(value, list):
            out[key] = [str(v) for v in value]
        else:
            out[key] = [str(value)]
    return out


async def read_json(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    text = await request.read()
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"invalid JSON body: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidArgument("the request body must be a JSON object")
    return data


def reply(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(data).encode() + b"\n", status=status, content_type="application/json")


class VersionedMemo:
    """Answers kept with the state version they were computed at (engine.stateversion) and
    given again while the version is the same, for at most ``max_age`` seconds: a change the
    version misses (a container started by a process killed before its start event, so nobody
    watches its conmon) shows within that time. Used from the event loop's thread only."""

    def __init__(self, max_age: float = 2.0, size: int = 64):
        self.max_age, self.size = max_age, size
        self._kept: dict[str, tuple[object, float, Any]] = {}

    def get(self, key: str, version: object) -> Any | None:
        """The answer kept for ``key`` at ``version``; None when there is none (or no version)."""
        kept = self._kept.get(key)
        if version is None or kept is None or kept[0] != version or time.monotonic() - kept[1] > self.max_age:
            return None
        return kept[2]

    def put(self, key: str, version: object, value: Any, computed_at: float) -> None:
        """Keep ``value``, computed from ``computed_at`` (time.monotonic()) on, read at ``version``
        (read before the computation started: a change during it makes the next version differ)."""
        if version is None:
            return
        if len(self._kept) >= self.size and key not in self._kept:
            self._kept.clear()
        self._kept[key] = (version, computed_at, value)


class LineQueue:
    """JSON lines produced by a worker thread, written to a streamed response by the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.queue: asyncio.Queue = asyncio.Queue()

    def put(self, obj: dict | bytes | None) -> None:
        data = obj if isinstance(obj, (bytes, type(None))) else json.dumps(obj).encode() + b"\r\n"
        self.loop.call_soon_threadsafe(self.queue.put_nowait, data)

    async def drain_into(self, resp: web.StreamResponse, work: asyncio.Future[Any],
                         request: web.Request | None = None, grace: float = 1.0) -> Any:
        """Copy lines to ``resp`` until ``work`` is done; its result (or exception) is returned/raised.

        With ``request``, ``resp`` is prepared here, at the first line or after ``grace`` seconds:
        a failure before that (``work`` raising, ``resp`` still unprepared) can be answered with its
        own status, as dockerd does while its output is unflushed.
        """
        getter = None
        deadline = asyncio.get_running_loop().time() + grace
        while True:
            if getter is None:
                getter = asyncio.ensure_future(self.queue.get())
            timeout = None if resp.prepared or request is None else \
                max(0.0, deadline - asyncio.get_running_loop().time())
            done, _ = await asyncio.wait({getter, work}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if not done:  # the grace is over: headers go out, the job runs on
                assert request is not None
                await resp.prepare(request)
                continue
            if getter in done:
                item = getter.result()
                getter = None
                if item:
                    if not resp.prepared and request is not None:
                        await resp.prepare(request)
                    await resp.write(item)
                continue
            if work in done:
                getter.cancel()
                if work.exception() is None and not resp.prepared and request is not None:
                    await resp.prepare(request)
                while not self.queue.empty():
                    item = self.queue.get_nowait()
                    if item:
                        if not resp.prepared and request is not None:
                            await resp.prepare(request)
                        await resp.write(item)
                return work.result()
