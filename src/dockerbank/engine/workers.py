"""Engine calls from an event loop (the API service, the dashboard): SQLite and subprocesses
block, so each call runs in a worker thread with an Engine of its own (a connection per call,
nothing shared between threads)."""

from __future__ import annotations

import asyncio

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from dockerbank.config import Config
    from dockerbank.engine import Engine


def in_worker(config: Config, fn: Callable[[Engine], Any]) -> asyncio.Future[Any]:
    """Run ``fn(engine)`` in the loop's executor with a fresh Engine for ``config``'s root."""

    def run() -> Any:
        from dockerbank.engine import Engine

        engine = Engine(config)
        try:
            return fn(engine)
        finally:
            engine.close()

    return asyncio.get_running_loop().run_in_executor(None, run)
