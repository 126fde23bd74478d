"""Engine calls from an event loop (the API service, the dashboard): SQLite and subprocesses
block, so each call runs in a worker thread with an Engine of its own (a connection per call,
nothing shared between threads).

Work an answer need not wait for (an exited ``--rm`` container's runtime state, overlay and
directory; its network teardown) goes to the process's background threads
(:func:`background`): a resident process does it in-process instead of starting an
interpreter per container, and the request's answer does not wait for it.
"""

from __future__ import annotations

import asyncio
import logging
import threading

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import ThreadPoolExecutor
    from typing import Any

    from dockerbank.config import Config
    from dockerbank.engine import Engine
    from dockerbank.engine.exits import ExitHandler
    from dockerbank.engine.stateversion import StateVersion

#: Threads for background work: teardowns take a host-wide network lock one at a time anyway,
#: so a few threads keep up with any rate of exits without competing with the requests.
BACKGROUND_THREADS = 4

_pool: ThreadPoolExecutor | None = None
_exit_handler: ExitHandler | None = None
_pool_lock = threading.Lock()
log = logging.getLogger("dockerbank.engine")


def background(work: Callable[[], None]) -> None:
    """Run ``work`` in one of the process's background threads (``Engine(background=...)``).

    The pool's threads are joined at the interpreter's exit, so work handed over before a
    shutdown still completes; a killed process leaves what ``system check`` repairs."""
    global _pool
    with _pool_lock:
        if _pool is None:
            from concurrent.futures import ThreadPoolExecutor

            _pool = ThreadPoolExecutor(max_workers=BACKGROUND_THREADS, thread_name_prefix="background")
        pool = _pool

    def run() -> None:
        try:
            work()
        except Exception:  # work handles its errors; one that escapes must not vanish silently
            log.exception("background work failed")

    pool.submit(run)


def drain_background() -> None:
    """Wait until the background work handed over so far is done (a service's shutdown)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True)


def start_exit_handler(config: Config) -> ExitHandler:
    """Handle the exits of ``config``'s containers in this process (engine.exits) until
    :func:`stop_exit_handler`; the engines of :func:`in_worker` start containers behind its lock."""
    from dockerbank.engine.exits import ExitHandler

    global _exit_handler
    handler = ExitHandler(config, background)
    handler.start()
    _exit_handler = handler
    return handler


def stop_exit_handler() -> None:
    global _exit_handler
    handler, _exit_handler = _exit_handler, None
    if handler is not None:
        handler.stop()


def state_version(config: Config) -> StateVersion:
    """The version of ``config``'s containers as this process can know it (engine.stateversion):
    known while this process's exit handler handles that root's exits."""
    from dockerbank.engine.stateversion import StateVersion

    def handler() -> ExitHandler | None:
        current = _exit_handler
        return current if current is not None and current.config.run_root == config.run_root else None

    return StateVersion(config.db_path, handler)


def _exit_guard(config: Config):
    handler = _exit_handler
    if handler is None or handler.config.run_root != config.run_root:
        return None
    return handler.guard


def in_worker(config: Config, fn: Callable[[Engine], Any]) -> asyncio.Future[Any]:
    """Run ``fn(engine)`` in the loop's executor with a fresh Engine for ``config``'s root; its
    deferred work goes to :func:`background`, the containers it starts behind the exit
    handler's lock while this process holds it."""

    def run() -> Any:
        from dockerbank.engine import Engine

        engine = Engine(config, background=background, exit_guard=_exit_guard(config))
        try:
            return fn(engine)
        finally:
            engine.close()

    return asyncio.get_running_loop().run_in_executor(None, run)
