"""Container exits handled inside a resident process (the API service) instead of by a new
interpreter per exit.

Daemonless, a detached container's exit is recorded by conmon's exit command, ``dockerbank
container cleanup ID``: a Python interpreter with the engine's imports for every exit (~100 ms
of CPU each; a ``compose down`` of 5 services starts 5 at once). While a resident process runs,
it can do that work in-process: it watches each running container's conmon through a pidfd and
runs the same clean-up (``ContainerService.get`` -> reconcile -> ``cleanup``: exit code, runtime
state, mount, network, ``--rm``, restart policy) in one of its background threads.

Who does it is decided by one lock, ``<run_root>/locks/exit-handler``:

- the resident handler holds it exclusively (retried every second while an exit command holds it);
- a container started while it is held gets the exit command behind
  ``flock --shared --nonblock --conflict-exit-code 0 LOCK``: with a handler up it exits at once
  (a ~1 ms process), without one (the service stopped or was killed) it takes the shared lock
  and cleans up as before. Shared, so exit commands never skip each other.

Containers never depend on the handler: killing it at any moment leaves every container to its
exit command or, in the window between the check and the handling, to the reconcile of the next
command that reads it (``system check`` too). Every start is an event in the event log, so the
handler learns of new containers (its own starts, restarts by policy, CLI starts) from the log's
appends (events.watch) and of exits from the pidfds, without polling.
"""

from __future__ import annotations

import fcntl
import logging
import os
import select
import threading
from pathlib import Path

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from collections.abc import Callable

    from dockerbank.config import Config

log = logging.getLogger("dockerbank.engine")
#: Actions after which a container may have a new conmon to watch.
STARTS = frozenset({"start", "restart", "unpause"})


def lock_path(config: Config) -> Path:
    return Path(config.run_root) / "locks" / "exit-handler"


def start_event_ids(lines: list[dict]) -> list[str]:
    """IDs of the containers a batch of events (re)started, in order, once each (pure)."""
    seen: dict[str, None] = {}
    for item in lines:
        if item.get("Type") == "container" and item.get("Action") in STARTS:
            actor = (item.get("Actor") or {}).get("ID") or ""
            if actor:
                seen[actor] = None
    return list(seen)


class ExitHandler:
    """One thread that watches the conmons of running containers and hands each exit to
    ``background`` (engine.workers.background); :attr:`guard` is the lock path to give the
    engines while this process holds it (None while it does not)."""

    def __init__(self, config: Config, background: Callable[[Callable[[], None]], None]):
        self.config = config
        self.background = background
        self._lock_fd = -1
        self._stop_r, self._stop_w = os.pipe()
        self._thread: threading.Thread | None = None
        self._watched: dict[int, str] = {}       # pidfd -> container ID
        self._ids: dict[str, int] = {}           # container ID -> pidfd
        self._attached: set[str] = set()         # watched only to count the exit: their client cleans up
        #: conmon exits seen so far; other threads read it (engine.stateversion), only this one counts
        self.seen_exits = 0

    @property
    def guard(self) -> Path | None:
        return lock_path(self.config) if self._lock_fd >= 0 else None

    def _try_lock(self) -> bool:
        path = lock_path(self.config)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="exit-handler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching and release the lock: exits from now on go to the exit commands."""
        if self._thread is not None:
            os.write(self._stop_w, b"x")
            self._thread.join(10)
            self._thread = None
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1
        for fd in list(self._watched):
            os.close(fd)
        self._watched.clear()
        self._ids.clear()
        self._attached.clear()

    # --- the thread --------------------------------------------------------------------------

    def _run(self) -> None:
        from dockerbank.engine import Engine
        from dockerbank.events.log import EventLog
        from dockerbank.events.watch import EventWatch

        engine = Engine(self.config)
        changes = EventWatch.of(self.config)  # before the scan: no start between them is missed
        events = EventLog.of(self.config)
        try:
            offset = events.path.stat().st_size
        except OSError:
            offset = 0
        batches = events.follow(offset)
        poller = select.poll()
        poller.register(self._stop_r, select.POLLIN)
        if changes.fd >= 0:
            poller.register(changes.fd, select.POLLIN)
        try:
            while True:
                if self._lock_fd < 0 and self._try_lock():
                    for container in engine.containers.store.list():  # whatever a predecessor left
                        self._watch(engine, container.id, poller)
                ready = poller.poll(1000 if self._lock_fd < 0 or changes.fd < 0 else None)
                fds = {fd for fd, _ in ready}
                if self._stop_r in fds:
                    return
                if changes.fd in fds or changes.fd < 0:
                    changes.wait(0)
                    if self._lock_fd >= 0:
                        for cid in start_event_ids(next(batches)):
                            self._watch(engine, cid, poller)
                for fd in fds & set(self._watched):
                    self._gone(self._unwatch(fd, poller))
        except Exception:  # never silently: without the handler the exit commands take over
            log.exception("exit handler stopped")
        finally:
            if self._lock_fd >= 0:  # the exit commands take over from here
                os.close(self._lock_fd)
                self._lock_fd = -1
            changes.close()
            engine.close()

    def _watch(self, engine, cid: str, poller: select.poll) -> None:
        """Watch ``cid``'s conmon while it is live; an exit already past is handled now. An
        attached container's exit is only counted: its client cleans up after it."""
        from dockerbank.container import model
        from dockerbank.errors import NotFound
        from dockerbank.runtime import conmon

        try:
            state = engine.containers.store.get(cid).state
        except NotFound:
            return
        if state.status not in model.ACTIVE or cid in self._ids:
            return
        if state.attached:
            self._attached.add(cid)
        else:
            self._attached.discard(cid)
        try:
            pidfd = os.pidfd_open(state.conmon_pid) if state.conmon_pid > 0 else -1
        except OSError:
            pidfd = -1
        if pidfd < 0 or not conmon.alive(state.conmon_pid, state.conmon_start):
            if pidfd >= 0:
                os.close(pidfd)
            self._gone(cid)  # gone before it was watched (or a pid that is another process now)
            return
        self._watched[pidfd], self._ids[cid] = cid, pidfd
        poller.register(pidfd, select.POLLIN)

    def _unwatch(self, fd: int, poller: select.poll) -> str:
        poller.unregister(fd)
        os.close(fd)
        cid = self._watched.pop(fd)
        self._ids.pop(cid, None)
        return cid

    def _gone(self, cid: str) -> None:
        """``cid``'s conmon has exited: counted at once, cleaned up in the background unless
        an attached client does that."""
        self.seen_exits += 1
        if cid in self._attached:
            self._attached.discard(cid)
            return
        self._exited(cid)

    def _exited(self, cid: str) -> None:
        config = self.config

        def handle() -> None:
            from dockerbank.engine import Engine
            from dockerbank.errors import DockerbankError

            engine = Engine(config, background=self.background, exit_guard=self.guard)
            try:
                engine.containers.get(cid)  # reconcile: the exit command's clean-up, restart policy included
            except DockerbankError:
                pass  # removed meanwhile, or the next reader's reconcile tries again
            finally:
                engine.close()

        self.background(handle)

