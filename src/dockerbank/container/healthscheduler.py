"""One small process per root that runs the healthchecks of all its containers while no
Dockerbank command runs (docker's per-container monitor goroutines, without a daemon).

The design keeps it cheap (the issue's constraint: no Python process per container):

- It runs as ``python -S -I`` with the standard library's sqlite3, json and datetime plus the pure
  :mod:`dockerbank.container.health`; it never imports the engine. When probes are due it starts
  one short-lived worker (:mod:`dockerbank.engine.healthworker`) for all of them, which runs
  each probe as an exec session through the engine's exec path (conmon) and records the result
  in the state database under the container's lock.
- It keeps nothing that is not in the database: the next probe of a container is one interval
  after the end of its last recorded probe (``State.Health.Log``), so killing the scheduler loses
  nothing; the next command that reads a running container with a healthcheck starts it again
  (:func:`ensure`).
- It is started on demand by ``start`` and exits once no running container has a healthcheck.
  ``flock`` on ``<run_root>/health/scheduler.lock`` makes it one per root; ``SIGUSR1`` wakes it
  when a container started (its first probe may be due before the scheduler's next wake-up).

This file runs as a script (``python -S -I healthscheduler.py …``): only the standard library at
the top, and :func:`ensure` is all the engine calls.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import time

LOCK = "scheduler.lock"
PIDFILE = "scheduler.pid"
#: the longest sleep: a missed wake-up costs at most this much delay
MAX_SLEEP = 60.0
#: the shortest gap between two probes of one container if a worker recorded nothing (no busy loop)
MIN_GAP = 1.0


def health_dir(run_root) -> str:
    return os.path.join(str(run_root), "health")


def running(run_root) -> int:
    """The scheduler's pid if one runs for ``run_root`` (its lock is held), else 0."""
    path = os.path.join(health_dir(run_root), LOCK)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            with open(os.path.join(health_dir(run_root), PIDFILE)) as handle:
                return int(handle.read().strip() or 0)
        except (OSError, ValueError):
            return -1  # held, pid not written yet
    finally:
        os.close(fd)
    return 0


def ensure(config) -> None:
    """Make sure a scheduler runs for ``config``'s root (start one, or wake the running one so it
    reads the new container). Cheap when one runs: one flock attempt and one signal."""
    hdir = health_dir(config.run_root)
    pid = running(config.run_root)
    if pid > 0:
        try:
            os.kill(pid, signal.SIGUSR1)
            return
        except OSError:
            pass
    if pid < 0:
        return  # one is starting: it reads the database after taking its lock
    import subprocess

    import dockerbank

    os.makedirs(hdir, mode=0o700, exist_ok=True)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(dockerbank.__file__)))
    errors = os.open(os.path.join(hdir, "errors.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                     0o600)
    try:
        subprocess.Popen([sys.executable, "-S", "-I", os.path.abspath(__file__), str(config.db_path),
                          str(config.root), str(config.run_root), package_parent, sys.executable],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors, cwd="/",
                         start_new_session=True, close_fds=True)
    finally:
        os.close(errors)


# --- the scheduler process ----------------------------------------------------------------

_QUERY = ("SELECT id, json_extract(config, '$.healthcheck'), json_extract(state, '$.health'), "
          "json_extract(state, '$.started_at') FROM containers "
          "WHERE json_extract(state, '$.status') = 'running' AND json_extract(config, '$.healthcheck') IS NOT NULL")


def _due_rows(db_path: str) -> list[tuple[str, dict, dict | None, str]]:
    """The running containers with an enabled healthcheck (a read-only connection, closed again:
    no database handle lives across the fork of a worker)."""
    import json
    import sqlite3

    from dockerbank.container.health import enabled

    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error:
        return []
    try:
        rows = conn.execute(_QUERY).fetchall()
    except sqlite3.Error:
        return []
    finally:
        conn.close()
    out = []
    for cid, raw_config, health, started_at in rows:
        config = json.loads(raw_config) if raw_config else None
        if config is not None and enabled(config):
            out.append((cid, config, json.loads(health) if health else None, started_at or ""))
    return out


class Scheduler:
    """The loop: read what is due, start a worker for it, sleep until the next probe or a signal."""

    def __init__(self, db_path: str, root: str, run_root: str, python: str):
        self.db_path, self.root, self.run_root, self.python = db_path, root, run_root, python
        self.hdir = health_dir(run_root)
        self.busy: dict[str, int] = {}          # container -> pid of the worker probing it
        self.spawned: dict[str, float] = {}     # container -> when its last worker started
        self.finished: dict[str, float] = {}    # container -> when its last worker ended

    def spawn(self, cids: list[str]) -> None:
        """One worker for ``cids`` (signals unblocked, stdio on /dev/null and the error log)."""
        errors = os.path.join(self.hdir, "errors.log")
        actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                   (os.POSIX_SPAWN_OPEN, 2, errors, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)]
        argv = [self.python, "-m", "dockerbank.engine.healthworker", self.root, self.run_root, *cids]
        try:
            pid = os.posix_spawn(self.python, argv, os.environ, file_actions=actions, setsigmask=())
        except OSError as exc:
            print(f"health scheduler: cannot start a probe worker: {exc}", file=sys.stderr)
            return
        now = time.time()
        for cid in cids:
            self.busy[cid] = pid
            self.spawned[cid] = now

    def reap(self) -> None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            now = time.time()
            for cid in [c for c, p in self.busy.items() if p == pid]:
                del self.busy[cid]
                self.finished[cid] = now

    def step(self) -> float | None:
        """One round: start the due probes; the seconds until the next round (None: nothing to do)."""
        from dockerbank.container.health import batch, next_due, slack

        self.reap()
        rows = _due_rows(self.db_path)
        now = time.time()
        dues: dict[str, tuple[float, float]] = {}
        live = set()
        for cid, config, health, started_at in rows:
            live.add(cid)
            if cid in self.busy:
                continue
            when = next_due(config, health, started_at)
            if cid in self.finished and self._nothing_recorded(cid, health):
                when = max(when, self.finished[cid] + MIN_GAP)
            dues[cid] = (when, slack(config))
        due, wake_at = batch(dues, now)
        wake = min(now + MAX_SLEEP, wake_at if wake_at is not None else now + MAX_SLEEP)
        for cid in list(self.spawned):
            if cid not in live and cid not in self.busy:
                self.spawned.pop(cid, None)
                self.finished.pop(cid, None)
        if due:
            self.spawn(due)
        if not rows and not self.busy:
            return None
        return max(0.0, wake - time.time())

    def _nothing_recorded(self, cid: str, health: dict | None) -> bool:
        """Whether the last worker of ``cid`` recorded no result (it failed, or found the probe of
        an earlier worker still running): then the next try waits MIN_GAP, never a busy loop."""
        from dockerbank.container.health import epoch

        log = (health or {}).get("Log") or []
        return not log or epoch(log[-1]["End"]) < self.spawned.get(cid, 0.0)

    def _lock(self) -> int | None:
        """Take the scheduler lock (a few tries: ensure() of a command may hold it shared for a
        moment while it looks); None when another scheduler holds it."""
        fd = os.open(os.path.join(self.hdir, LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        for _ in range(10):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._write_pid()
                return fd
            except BlockingIOError:
                time.sleep(0.02)
        os.close(fd)
        return None

    def run(self) -> int:
        os.makedirs(self.hdir, mode=0o700, exist_ok=True)
        lock = self._lock()
        if lock is None:
            return 0  # another scheduler serves this root
        wanted = {signal.SIGUSR1, signal.SIGCHLD}
        signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
        while True:
            wait = self.step()
            if wait is None:
                # Nothing to do: give up the lock, then look once more, so a container started
                # between the last read and the release (whose ensure() saw the lock held) is
                # not left without a scheduler.
                self._forget_probe_locks()
                os.close(lock)
                if not _due_rows(self.db_path):
                    return 0
                lock = self._lock()
                if lock is None:
                    return 0  # a new scheduler took over
                continue
            if wait > 0:
                signal.sigtimedwait(wanted, wait)

    def _forget_probe_locks(self) -> None:
        """The per-container probe lock files (no worker runs any more; a straggler keeps its fd)."""
        try:
            names = os.listdir(self.hdir)
        except OSError:
            return
        for name in names:
            if name.endswith(".probe"):
                try:
                    os.unlink(os.path.join(self.hdir, name))
                except OSError:
                    pass

    def _write_pid(self) -> None:
        tmp = os.path.join(self.hdir, f".{PIDFILE}.{os.getpid()}")
        with open(tmp, "w") as handle:
            handle.write(f"{os.getpid()}\n")
        os.replace(tmp, os.path.join(self.hdir, PIDFILE))


def main(argv: list[str]) -> int:
    """``python -S -I healthscheduler.py DB ROOT RUN_ROOT PACKAGE_PARENT PYTHON``."""
    db_path, root, run_root, package_parent, python = argv
    sys.path.insert(0, package_parent)  # -S -I: no site-packages; the pure health module comes from here
    return Scheduler(db_path, root, run_root, python).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
