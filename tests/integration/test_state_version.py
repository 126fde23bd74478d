"""engine.stateversion with a real exit handler, conmon and crun: the version holds while nothing
changes and moves with a commit of another process and with a conmon exit the handler sees
before any row changes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from conftest import until

from dockerbank.container.options import CreateOptions
from dockerbank.engine import Engine
from dockerbank.engine import exits as ex
from dockerbank.engine.stateversion import StateVersion

pytestmark = pytest.mark.integration



def test_the_version_moves_with_other_processes_commits_and_conmon_exits(engine, busybox):
    # a handler whose background never runs: the killed conmon's row stays "running", so only
    # the handler's count can move the version
    handler = ex.ExitHandler(engine.config, lambda work: None)
    version = StateVersion(engine.config.db_path, lambda: handler)
    assert version.current() is None  # not started: exits go unseen here, no version
    handler.start()
    assert until(lambda: handler.guard is not None)
    eng = Engine(engine.config, exit_guard=handler.guard)
    container = eng.containers.create(CreateOptions(image="busybox", command=["sleep", "600"], network="none"))
    try:
        eng.containers.start(container.id)
        state = eng.containers.store.get(container.id).state
        assert until(lambda: container.id in handler._ids)  # learned from the start event
        before = version.current()
        assert before is not None and version.current() == before
        renamed = subprocess.run([sys.executable, "-m", "dockerbank", "--root", str(engine.config.root),
                                  "--runroot", str(engine.config.run_root), "rename", container.id, "renamed"],
                                 capture_output=True, timeout=60)
        assert renamed.returncode == 0, renamed.stderr
        after_rename = version.current()
        assert after_rename != before and version.current() == after_rename
        os.kill(state.conmon_pid, signal.SIGKILL)
        assert until(lambda: version.current() != after_rename)
        assert engine.containers.store.get(container.id).state.status == "running"  # no row changed
    finally:
        handler.stop()
        version.close()
        eng.containers.get(container.id)  # reconcile: the clean-up the handler skipped
        eng.close()
    assert version.current() is None
