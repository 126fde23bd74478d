"""Requests in flight of an aiohttp server, so that a stop lets them finish (``registry serve``,
``system service`` and the dashboard beside it share this; host/stopsignals.py gives the signal).

aiohttp's own shutdown closes every connection to further input first: an upload whose body is
still arriving (a blob push, a ``docker load``/``build`` context) could only be cut. So a server
stops listening, waits on :meth:`InFlight.settled` for a grace, ends the requests that follow
without end (:func:`following`: events, ``logs -f``, attach, a stats stream, ``wait``), and only
then hands over to ``AppRunner.cleanup``.
"""

from __future__ import annotations

import asyncio

from aiohttp import web


#: seconds requests in flight get to finish after SIGTERM/SIGINT, twice: handlers (an upload's body
#: still arriving, a create) while nothing else changes, then responses still going out during
#: aiohttp's own shutdown (its ``shutdown_timeout``), which takes no more input; what still runs then
#: is cancelled. Followers hold nothing back: they are ended once the others finished or the grace
#: passed. One figure for the API service, the dashboard and the registry server.
GRACE = 2.0


class InFlight:
    """The requests whose handler runs, apart from those that follow (which :meth:`end_streams` ends)."""

    def __init__(self) -> None:
        self.count = 0
        self._idle: asyncio.Event | None = None
        self._streams: set[asyncio.Task] = set()

    def _event(self) -> asyncio.Event:
        if self._idle is None:   # made in the serving loop (start_in_thread's is another thread's)
            self._idle = asyncio.Event()
            if not self.count:
                self._idle.set()
        return self._idle

    def enter(self) -> None:
        self.count += 1
        self._event().clear()

    def leave(self) -> None:
        self.count -= 1
        if not self.count:
            self._event().set()

    def follow(self, task: asyncio.Task) -> None:
        """``task``'s request now follows without end: it no longer holds a stop back."""
        self._streams.add(task)
        self.leave()

    def unfollow(self, task: asyncio.Task) -> None:
        self._streams.discard(task)

    async def settled(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until no handler runs but followers; whether that happened."""
        try:
            await asyncio.wait_for(self._event().wait(), timeout)
        except TimeoutError:
            return False
        return True

    def end_streams(self) -> int:
        """Cancel the following handlers (their client sees the stream end); how many there were."""
        streams, self._streams = self._streams, set()
        for task in streams:
            task.cancel()
        return len(streams)


IN_FLIGHT = web.AppKey("in_flight", InFlight)
_FOLLOWING = web.RequestKey("in_flight_following", asyncio.Task)


@web.middleware
async def count_in_flight(request: web.Request, handler):
    """Counts the request while its handler runs (first in an app's middlewares, with ``app[IN_FLIGHT]``)."""
    in_flight = request.app[IN_FLIGHT]
    in_flight.enter()
    try:
        return await handler(request)
    finally:
        task = request.get(_FOLLOWING)
        if task is None:
            in_flight.leave()
        else:
            in_flight.unfollow(task)


def following(request: web.Request) -> None:
    """Called by a handler whose response follows until the client leaves (its headers are out):
    a stop does not wait for it, it is ended after the requests with an end finished."""
    in_flight = request.app.get(IN_FLIGHT)
    task = asyncio.current_task()
    if in_flight is None or task is None or request.get(_FOLLOWING) is not None:
        return
    request[_FOLLOWING] = task
    in_flight.follow(task)
