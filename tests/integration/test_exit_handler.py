"""The resident exit handler (engine.exits) with real conmon and crun: while it holds its lock,
a detached container's exit is recorded by the handler and the guarded exit command does
nothing; without it (stopped, or never started) the exit command cleans up as before; a
restart policy still restarts."""

from __future__ import annotations

import fcntl
import os
import subprocess

import pytest
from conftest import until

from dockerbank.container.options import CreateOptions
from dockerbank.engine import Engine
from dockerbank.engine import exits as ex
from dockerbank.engine import workers
from dockerbank.runtime.conmon import guarded_exit_command

pytestmark = pytest.mark.integration


def _status(config, cid: str) -> str:
    """The stored status, without the reconcile every reader does (which would clean up itself)."""
    eng = Engine(config)
    try:
        return eng.containers.store.get(cid).state.status
    finally:
        eng.close()



def _start(engine: Engine, guard, *cmd: str, restart: str = "no") -> str:
    eng = Engine(engine.config, exit_guard=guard, background=workers.background)
    try:
        container = eng.containers.create(CreateOptions(image="busybox", command=list(cmd), network="none",
                                                        restart=restart))
        eng.containers.start(container.id)
        return container.id
    finally:
        eng.close()


def test_the_guarded_exit_command_defers_to_a_holder_of_the_lock(engine, busybox):
    lock = ex.lock_path(engine.config)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a handler that watches nothing: exits stay unrecorded
    try:
        cid = _start(engine, lock, "true")
        guarded = Engine(engine.config, exit_guard=lock).containers._exit_command(cid)
        assert guarded[0].endswith("flock") and guarded[-2:] == ["cleanup", cid]
        conmon_pid = engine.containers.store.get(cid).state.conmon_pid
        assert until(lambda: not os.path.exists(f"/proc/{conmon_pid}"))
        assert subprocess.run(guarded, capture_output=True, timeout=60).returncode == 0
        assert _status(engine.config, cid) == "running"  # neither conmon's nor this one did anything
    finally:
        os.close(fd)
    assert subprocess.run(guarded, capture_output=True, timeout=60).returncode == 0
    assert _status(engine.config, cid) == "exited"  # nobody holds the lock: the exit command cleans up


def test_the_handler_records_exits_and_restarts_and_hands_over_when_stopped(engine, busybox):
    handler = ex.ExitHandler(engine.config, workers.background)
    handler.start()
    try:
        assert until(lambda: handler.guard is not None)
        cid = _start(engine, handler.guard, "sleep", "0.2")
        assert until(lambda: _status(engine.config, cid) == "exited")
        flaky = _start(engine, handler.guard, "false", restart="on-failure:2")
        assert until(lambda: engine.containers.store.get(flaky).state.restart_count == 2
                      and _status(engine.config, flaky) == "exited")
        late = _start(engine, handler.guard, "sleep", "1")
    finally:
        handler.stop()
        workers.drain_background()
    assert handler.guard is None
    # started behind the lock, exited after the handler left: its exit command did the work
    assert until(lambda: _status(engine.config, late) == "exited")
    guarded = guarded_exit_command(["cleanup"], ex.lock_path(engine.config))
    assert guarded[1:5] == ["--shared", "--nonblock", "--conflict-exit-code", "0"] and guarded[-1] == "cleanup"


def test_start_events_name_each_container_once():
    events = [{"Type": "container", "Action": "start", "Actor": {"ID": "a"}},
              {"Type": "container", "Action": "die", "Actor": {"ID": "b"}},
              {"Type": "network", "Action": "start", "Actor": {"ID": "n"}},
              {"Type": "container", "Action": "restart", "Actor": {"ID": "c"}},
              {"Type": "container", "Action": "start", "Actor": {"ID": "a"}}]
    assert ex.start_event_ids(events) == ["a", "c"]
