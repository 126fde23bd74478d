"""One healthcheck probe of a container, and its result recorded (the health worker's job,
``engine.healthworker``).

A probe is an exec session through ``ContainerService.exec`` (its
own conmon), its output read from the attach socket (first 4096 bytes kept), killed after the
healthcheck's timeout. The result lands in ``State.Health`` under the container's lock, only if
the container still runs the same start (a result of an earlier run is dropped); a changed status
is recorded as docker's ``health_status: …`` event.
"""

from __future__ import annotations

import fcntl
import os
import select
import shutil
import signal
import time
from pathlib import Path

from dockerbank.container import health
from dockerbank.errors import DockerbankError


def run_probe(service, cid: str, argv: list[str], timeout: float) -> tuple[int, bytes]:
    """Run ``argv`` in the container as an exec session; (exit code, output). Docker's -1 with a
    message when the exec cannot run or exceeds ``timeout``."""
    from dockerbank.runtime import conmon

    deadline = time.monotonic() + timeout
    try:
        session = service.exec(cid, argv)
    except DockerbankError as exc:
        return -1, exc.message.encode()
    output = bytearray()
    timed_out = False
    try:
        sock = session.sock
        while sock is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([sock], [], [], remaining)
            if not ready:
                continue
            try:
                data = sock.recv(conmon.BUF_SIZE)
            except OSError:
                data = b""
            if not data:
                break
            if len(output) < health.MAX_OUTPUT:
                output += data[1:]  # the first byte names the stream: stdout and stderr both count
        if sock is not None:
            sock.close()
        code = None
        if not timed_out:
            code = conmon.wait_exit(session.work, session.conmon_pid, session.conmon_start,
                                    timeout=max(0.0, deadline - time.monotonic()), exit_command=False)
            timed_out = code is None
        if timed_out or code is None:  # code is None exactly when timed out
            _kill_exec(session.work)
            conmon.wait_exit(session.work, session.conmon_pid, session.conmon_start, timeout=5, exit_command=False)
            text = f"Health check exceeded timeout ({health.go_duration(timeout)})"
            if output:
                text += ": " + bytes(output[:health.MAX_OUTPUT]).decode(errors="replace")
            return -1, text.encode()
        return code, bytes(output)
    finally:
        shutil.rmtree(session.work, ignore_errors=True)


def _kill_exec(work: Path) -> None:
    try:
        pid = int((work / "pid").read_text().strip())
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass


def probe(service, cid: str) -> str | None:
    """Probe one container now through ``service`` (its ContainerService) and record the result;
    the new status when it changed. A second probe of the same container while one runs (a
    worker of a killed scheduler) does nothing."""
    from dockerbank.container import model

    lock_dir = Path(service.config.run_root) / "health"
    lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(str(lock_dir / f"{cid}.probe"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # a worker of an earlier scheduler still probes it
        try:
            container = service.store.get(cid)
        except DockerbankError:
            return None
        config = container.config.healthcheck
        if container.state.status != model.RUNNING or not health.enabled(config):
            return None
        started_at = container.state.started_at
        _, timeout, _, _, _ = health.timing(config)
        start = time.time()
        code, output = run_probe(service, cid, health.probe_argv(config), timeout)
        entry = health.result(start, time.time(), code, output)
        changed: list[str | None] = [None]
        with service.lock(cid):
            try:
                current = service.store.get(cid)
            except DockerbankError:
                return None
            if current.state.status != model.RUNNING or current.state.started_at != started_at:
                return None  # stopped or restarted meanwhile: this result belongs to no current run

            def apply(state) -> None:
                state.health, changed[0] = health.record(state.health, entry, config, started_at)

            service.store.update_state(cid, apply)
        if changed[0] is not None:
            service._event(container, f"health_status: {changed[0]}")
        return changed[0]
    finally:
        os.close(fd)
