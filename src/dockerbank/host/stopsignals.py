"""SIGINT and SIGTERM as an awaitable event, for servers that end cleanly (``registry serve``).

The default action of SIGTERM ends a Python process at once: clients see reset connections and
the log says nothing. A server instead awaits :meth:`StopSignals.wait` and then shuts down in its
own task, not a cancelled one: aiohttp's ``AppRunner.cleanup`` re-raises its shutdown timeout in
a task that is being cancelled (``task.cancelling()``), so the grace it gives requests in flight
would end in an exception there.
"""

from __future__ import annotations

import asyncio
import signal

#: what an operator, systemd or a terminal sends to end a server
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Within ``with StopSignals() as stop:`` (in a running event loop) the signals no longer end
    the process; ``await stop.wait()`` returns the first one that arrived. Later ones (a second
    Ctrl-C during the shutdown) are ignored: the shutdown is bounded by its own grace."""

    def __init__(self, signals: tuple[int, ...] = STOP_SIGNALS):
        self.signals = signals
        self.received: int | None = None
        self._event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> StopSignals:
        self._loop = asyncio.get_running_loop()
        for signum in self.signals:
            self._loop.add_signal_handler(signum, self._got, signum)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        for signum in self.signals:
            self._loop.remove_signal_handler(signum)   # back to the default action

    def _got(self, signum: int) -> None:
        if self.received is None:
            self.received = signum
        self._event.set()

    async def wait(self) -> int:
        """The number of the first stop signal received (waits for one)."""
        await self._event.wait()
        assert self.received is not None
        return self.received

    @property
    def name(self) -> str:
        """``SIGTERM``/``SIGINT`` for the log line; empty before one arrived."""
        return signal.Signals(self.received).name if self.received is not None else ""
