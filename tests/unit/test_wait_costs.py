"""What an exec, a stop and an API wait no longer pay on the way to their answer (issues 19/23):
closing an inotify instance (the kernel's SRCU grace period), a namespace prefix in front of an
exec's conmon, a double fork waited for, a dataclass __init__ per ps row."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dockerbank.container.model import ContainerConfig, ContainerState
from dockerbank.host import inotify
from dockerbank.host.inotify import DirWatch
from dockerbank.runtime import conmon
from dockerbank.runtime.detect import RuntimeChoice
from dockerbank.runtime.oci import OciRuntime


def test_a_closed_watch_keeps_its_instance_for_the_next(tmp_path):
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    first_dir.mkdir()
    second_dir.mkdir()
    first = DirWatch(first_dir)
    assert first.fd >= 0, "inotify is available on Linux"
    fd = first.fd
    first.close()
    assert first.fd == -1
    os.fstat(fd)  # still open: kept, not closed (a close waits for an RCU grace period)
    (first_dir / "late").write_text("x")  # after the close: must not reach the next watch
    with DirWatch(second_dir) as second:
        assert second.fd == fd  # the instance is reused
        (second_dir / "exit").write_text("0")
        second.wait(5)
        assert b"exit" in second.names() and b"late" not in second.names()


def test_watches_at_the_same_time_have_instances_of_their_own(tmp_path):
    with DirWatch(tmp_path) as one, DirWatch(tmp_path) as two:
        assert one.fd >= 0 and two.fd >= 0 and one.fd != two.fd
        (tmp_path / "f").write_text("x")
        two.wait(5)
        assert b"f" in two.names()
        assert b"f" in one.names()  # one's records were not taken by two


def test_a_forked_child_reuses_none_of_its_parents_spares(tmp_path):
    DirWatch(tmp_path).close()
    assert inotify._SPARE
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the at-fork hook emptied the list in the child
        os.write(write, b"%d" % len(inotify._SPARE))
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 10) == b"0"
    os.close(read)
    assert inotify._SPARE  # the parent's are still there


def _fake_conmon(work: Path, code: int, delay: float) -> subprocess.Popen:
    """A process that, like a conmon without exit command, writes the exit file and exits."""
    return subprocess.Popen([sys.executable, "-c", f"import time, pathlib; time.sleep({delay}); "
                             f"pathlib.Path({str(work / 'exit')!r}).write_text('{code}')"])


def test_wait_exit_without_exit_command_waits_on_the_pidfd_alone(tmp_path, monkeypatch):
    def no_watch(*_args, **_kwargs):
        raise AssertionError("no inotify instance for a conmon without exit command")

    monkeypatch.setattr(inotify, "DirWatch", no_watch)
    proc = _fake_conmon(tmp_path, 7, 0.2)
    try:
        assert conmon.wait_exit(tmp_path, proc.pid, exit_command=False, timeout=30) == 7
    finally:
        proc.wait()
    # the file is there already: answered at once, no pidfd, no watch
    assert conmon.wait_exit(tmp_path, 0, exit_command=False) == 7


def test_wait_exit_without_exit_command_times_out(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        started = time.monotonic()
        assert conmon.wait_exit(tmp_path, proc.pid, exit_command=False, timeout=0.2) is None
        assert time.monotonic() - started < 10
    finally:
        proc.kill()
        proc.wait()


def test_wait_exit_with_exit_command_still_wakes_on_the_file(tmp_path):
    proc = _fake_conmon(tmp_path, 3, 0.2)  # conmon lingers (its exit command): the file's creation wakes
    try:
        assert conmon.wait_exit(tmp_path, proc.pid, timeout=30) == 3
    finally:
        proc.wait()


def test_an_exec_conmon_runs_without_the_namespace_prefix(tmp_path):
    hybrid = OciRuntime(RuntimeChoice("crun", "/usr/bin/crun", True), tmp_path / "runtime")
    # exec joins the container's cgroups: crun as is, no wrapper, no unshare
    assert hybrid.conmon_args(private_ns_here=False, sets_cgroups_up=False) == [
        "-r", "/usr/bin/crun", f"--runtime-arg=--root={tmp_path / 'runtime'}"]
    # a create with an exit command (host namespace) still gets the wrapper
    assert hybrid.conmon_args(private_ns_here=False)[2].endswith("runtime-private-ns.sh")
    assert hybrid.argv("exec", "c1")[0] == "/usr/bin/crun"


def test_run_detached_does_not_wait_for_the_work(tmp_path):
    # in a process of its own: run_detached forks only a single-threaded process (this test
    # process may have other tests' threads)
    script = f"""
import pathlib, sys, time
from dockerbank.host.detach import run_detached
done, go = pathlib.Path({str(tmp_path / 'done')!r}), pathlib.Path({str(tmp_path / 'go')!r})
def work():  # runs only once the parent has returned and said go
    deadline = time.monotonic() + 30
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    done.write_text("ok" if go.exists() else "not told")
assert run_detached(work) is True
go.write_text("")  # the parent got here while the child still waits: nothing was waited for
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    done = tmp_path / "done"
    deadline = time.monotonic() + 30
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert done.read_text() == "ok"


def test_run_detached_work_survives_the_hangup_right_after_the_fork(tmp_path):
    """A `run -it --rm` CLI exits as soon as it forked its teardown, and the kernel hangs up the
    terminal's foreground group at once: the child must not die of it before it ignores SIGHUP
    (it did ~40% of the time, leaving the overlay mounted)."""
    script = f"""
import os, pathlib, signal
from dockerbank.host.detach import run_detached
signal.signal(signal.SIGHUP, signal.SIG_DFL)   # as in a terminal (nohup or CI may hand down SIG_IGN)
os.setpgid(0, 0)   # a group of its own, as a terminal's foreground job (not the test's)
done = pathlib.Path({str(tmp_path / 'done')!r})
assert run_detached(lambda: done.write_text("ok")) is True
os.killpg(0, signal.SIGHUP)   # the hangup, at once: it ends this process, not the child's work
"""
    for _ in range(5):   # the window was a fresh interpreter's first instructions: try it a few times
        (tmp_path / "done").unlink(missing_ok=True)
        hung = subprocess.run([sys.executable, "-c", script], timeout=60)
        assert hung.returncode == -signal.SIGHUP
        deadline = time.monotonic() + 30
        while not (tmp_path / "done").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (tmp_path / "done").read_text() == "ok"


@pytest.mark.parametrize("kind", [ContainerConfig, ContainerState])
def test_rows_parse_the_same_through_the_fast_path(kind):
    base = kind(image="busybox", image_id="sha256:x", path="sh") if kind is ContainerConfig else kind()
    full = base.to_dict()
    fast = kind.from_dict(dict(full))
    assert fast == base and type(fast) is kind and fast.to_dict() == full
    partial = {k: v for k, v in full.items() if k not in ("labels", "health")}  # an older row
    partial["unknown_later_field"] = 1  # a newer one's field is ignored
    assert kind.from_dict(partial) == base


def test_stored_text_is_what_asdict_gives():
    import json
    from dataclasses import dataclass

    from dockerbank.container.store import _text

    @dataclass
    class Inner:
        a: int = 1

    config = ContainerConfig(image="busybox", image_id="sha256:x", path="sh", labels={"k": "v"})
    config.mounts = [Inner()]  # a dataclass value is stored as asdict stores it
    assert json.loads(_text(config)) == config.to_dict()
    assert json.loads(_text(ContainerState(health={"Status": "starting"}))) == ContainerState(
        health={"Status": "starting"}).to_dict()


def test_the_seccomp_identity_names_libseccomp_without_listing_lib(monkeypatch):
    from dockerbank.runtime import seccomp_cache

    listed = []
    real_glob = seccomp_cache.glob.glob
    monkeypatch.setattr(seccomp_cache.glob, "glob", lambda p: listed.append(p) or real_glob(p))
    identity = seccomp_cache.runtime_identity("/usr/bin/crun")
    assert all(p.endswith("libseccomp.so.2") for p in listed)  # a stat each, no directory listing
    if any(os.path.exists(p) for p in ("/usr/lib/x86_64-linux-gnu/libseccomp.so.2", "/lib64/libseccomp.so.2")):
        assert "libseccomp.so.2." in identity  # the versioned file the link names: an upgrade changes it


def test_listed_configs_are_parsed_once_and_copied(tmp_path, monkeypatch):
    from dockerbank.container import store as store_module
    from dockerbank.container.model import Container
    from dockerbank.container.store import ContainerStore
    from dockerbank.state.db import Database

    store = ContainerStore(Database(tmp_path / "state.db"))
    config = ContainerConfig(image="busybox", image_id="sha256:x", path="sh", labels={"a": "1"})
    store.insert(Container("c" * 64, "one", "2026-01-01T00:00:00Z", config, ContainerState()))
    first = store.list()[0]
    parsed = []
    real = ContainerConfig.from_dict
    monkeypatch.setattr(ContainerConfig, "from_dict", classmethod(lambda cls, d: parsed.append(d) or real(d)))
    first.config.path = "changed by a caller"  # an attribute of the caller's copy only
    second = store.list()[0]
    assert parsed == [] and second.config == config and second.config is not first.config
    store.update_config("c" * 64, lambda c: setattr(c, "labels", {"a": "2"}))  # a new text: parsed anew
    assert store.list()[0].config.labels == {"a": "2"} and len(parsed) == 2  # the update's parse and the list's
    assert store_module._LISTED["c" * 64][1].labels == {"a": "2"}
