"""Real cgroups, real processes: stats move, OOM kills are seen, the freezer freezes,
``top`` finds the processes, and every cgroup made here is removed again.

This host has hybrid cgroups: the v1 controllers are tested through the detected layout;
the v2 code paths (``cgroup.freeze``, ``cgroup.events``, ``cpu.stat``, ``cgroup.procs``)
are tested for real in the controller-less cgroup2 tree mounted at
``/sys/fs/cgroup/unified``, whose core files every cgroup2 has. On a pure v2 host the
detected layout is v2 and the first group of tests exercises v2 with controllers.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import require_binary

from dockerbank.container.oom import oom_info, oom_killed
from dockerbank.container.stats import api_stats, cpu_percent, read_sample, stats_row
from dockerbank.container.top import render_top, run_top
from dockerbank.errors import DockerbankError, NotFound, RuntimeFailure
from dockerbank.host.cgroups import (
    Cgroup,
    CgroupLayout,
    container_cgroups_path,
    detect_layout,
    pids_of,
    remove_stale,
)

CHILD = r"""
import sys, time
blobs = []
print("ready", flush=True)
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "alloc":
        size = int(cmd[1])
        block = bytearray(size)
        for i in range(0, size, 4096):
            block[i] = 1
        blobs.append(block)
    elif cmd[0] == "spin":  # burn this much CPU time (not wall time: the host may be busy)
        end = time.process_time() + float(cmd[1])
        while time.process_time() < end:
            pass
    elif cmd[0] == "spinforever":
        n = 0
        while True:
            n += 1
    print("ok", flush=True)
"""

MiB = 1024 * 1024


class Child:
    """A python process we can ask to allocate memory or burn CPU."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def ask(self, command: str) -> str:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def send(self, command: str) -> None:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


def _cleanup(cgroup: Cgroup, processes: list) -> None:
    # Thaw first: a frozen process cannot die.
    with contextlib.suppress(DockerbankError):
        cgroup.thaw(timeout=2)
    for proc in processes:
        if isinstance(proc, Child):
            proc.stop()
        elif proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    for pid in pids_of(cgroup):  # anything that forked inside
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    cgroup.remove(timeout=5)
    assert not cgroup.exists()


def _fresh_cgroup(layout: CgroupLayout):
    """The body of a cgroup fixture: a new cgroup under /dockerbank-test/<random> in ``layout`` and a
    list for the test's processes; after the test the processes are killed and the cgroup removed."""
    cg = Cgroup(layout, f"/dockerbank-test/{uuid.uuid4().hex}")
    cg.create()
    processes: list = []
    try:
        yield cg, processes
    finally:
        _cleanup(cg, processes)
        # the shared parent goes too when no other test uses it
        with contextlib.suppress(RuntimeFailure):  # another test's cgroup is still there
            Cgroup(layout, "/dockerbank-test").remove(timeout=0)


@pytest.fixture
def layout() -> CgroupLayout:
    return detect_layout()


@pytest.fixture
def cgroup(layout):
    """A fresh cgroup under /dockerbank-test/<random> in every hierarchy, removed after."""
    yield from _fresh_cgroup(layout)


@pytest.fixture
def v2cgroup():
    """A cgroup in a real cgroup2 tree: the host's own on v2, /sys/fs/cgroup/unified on hybrid."""
    host = detect_layout()
    if host.unified is None:
        pytest.fail("this host has no cgroup2 mount at all (pure v1): the v2 paths cannot be tested")
    layout = CgroupLayout("v2", {}, host.unified, host.v2_controllers)
    yield from _fresh_cgroup(layout)


def _cpu_grows(cg: Cgroup, start_ns: int, by_ns: int, timeout: float = 10.0) -> bool:
    """Whether the cgroup's CPU time grows by ``by_ns`` within ``timeout`` (polling: on a
    loaded host a busy child gets less than its share of wall time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if read_sample(cg).cpu_total_ns - start_ns >= by_ns:
            return True
        time.sleep(0.02)
    return False


def _state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0]


def test_layout_detected_matches_mounts(layout):
    mounted = Path("/proc/self/mountinfo").read_text()
    if " - cgroup2 " in mounted and " - cgroup " not in mounted:
        assert layout.mode == "v2"
    elif " - cgroup2 " in mounted:
        assert layout.mode == "hybrid"
    else:
        assert layout.mode == "v1"
    assert layout.has("memory")


def test_memory_pids_and_cpu_move(cgroup):
    cg, processes = cgroup
    child = Child()
    processes.append(child)
    cg.add_pid(child.pid)
    assert child.pid in cg.pids()

    before = read_sample(cg, child.pid)
    assert child.ask("alloc " + str(50 * MiB)) == "ok"
    sleepers = [subprocess.Popen(["sleep", "60"]) for _ in range(3)]
    processes.extend(sleepers)
    for proc in sleepers:
        cg.add_pid(proc.pid)
    assert child.ask("spin 0.3") == "ok"
    after = read_sample(cg, child.pid)

    assert after.memory_usage - before.memory_usage >= 45 * MiB
    assert after.memory_used >= 45 * MiB
    assert after.memory_limit > 0  # unlimited: the host's memory, like dockerd
    assert after.pids_current == 4
    assert sorted(cg.pids()) == sorted([child.pid] + [p.pid for p in sleepers])
    assert after.cpu_total_ns - before.cpu_total_ns >= 290_000_000  # 0.3 s of CPU burnt
    assert after.system_cpu_ns > before.system_cpu_ns
    assert after.online_cpus == os.sysconf("SC_NPROCESSORS_ONLN")
    assert cpu_percent(before, after) > 1.0
    assert after.networks == {}  # the child shares the host's network namespace
    row = stats_row("f" * 64, "probe", after, before)
    assert row["PIDs"] == "4" and row["MemUsage"].split(" / ")[0].endswith("MiB")
    assert api_stats("f" * 64, "probe", after, before)["pids_stats"]["current"] == 4


def test_oom_kill_is_detected(cgroup, layout):
    cg, processes = cgroup
    child = Child()
    processes.append(child)
    cg.add_pid(child.pid)
    assert not oom_killed(cg)
    if layout.mode == "v2":
        cg.write("memory", "memory.max", str(32 * MiB))
        if (cg.dir("memory") / "memory.swap.max").exists():
            cg.write("memory", "memory.swap.max", "0")
    else:
        cg.write("memory", "memory.limit_in_bytes", str(32 * MiB))
        if (cg.dir("memory") / "memory.memsw.limit_in_bytes").exists():
            cg.write("memory", "memory.memsw.limit_in_bytes", str(32 * MiB))
    child.send("alloc " + str(100 * MiB))
    assert child.proc.wait(timeout=30) == -signal.SIGKILL
    info = oom_info(cg)
    assert info.killed and info.oom_kills >= 1
    assert oom_killed(cg)
    sample = read_sample(cg)
    assert sample.memory_limit == 32 * MiB


def test_freeze_and_thaw_v1_or_host(cgroup):
    cg, processes = cgroup
    child = Child()
    processes.append(child)
    cg.add_pid(child.pid)
    child.send("spinforever")
    time.sleep(0.1)
    assert cg.freezer_state() == "THAWED"
    cg.freeze()
    assert cg.freezer_state() == "FROZEN"
    # Frozen: the v1 freezer shows the task in D, the v2 freezer in S; and it burns no CPU.
    assert _state(child.pid) == ("S" if cg.layout.mode == "v2" else "D")
    used = read_sample(cg).cpu_total_ns
    time.sleep(0.3)
    assert read_sample(cg).cpu_total_ns - used < 20_000_000
    cg.thaw()
    assert cg.freezer_state() == "THAWED"
    assert _cpu_grows(cg, used, 50_000_000)


def test_v2_freezer_pids_cpu_for_real(v2cgroup):
    cg, processes = v2cgroup
    child = Child()
    processes.append(child)
    cg.add_pid(child.pid)
    assert cg.pids() == [child.pid]
    before = read_sample(cg)
    child.send("spinforever")
    assert _cpu_grows(cg, before.cpu_total_ns, 50_000_000)  # cpu.stat usage_usec
    assert cg.freezer_state() == "THAWED"
    cg.freeze()
    assert cg.freezer_state() == "FROZEN"
    assert _state(child.pid) == "S"  # the v2 freezer parks tasks like a signal stop
    used = read_sample(cg).cpu_total_ns
    time.sleep(0.3)
    assert read_sample(cg).cpu_total_ns - used < 20_000_000
    cg.thaw()
    assert cg.freezer_state() == "THAWED"


def test_top_on_cgroup_pids(cgroup):
    cg, processes = cgroup
    sleeper = subprocess.Popen(["sleep", "60"])
    processes.append(sleeper)
    cg.add_pid(sleeper.pid)
    result = run_top(cg.pids(), ["-o", "pid,comm"])
    assert result.titles == ["PID", "COMMAND"]
    assert result.processes == [[str(sleeper.pid), "sleep"]]
    default = run_top(cg.pids())
    assert default.titles == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert len(default.processes) == 1 and default.processes[0][1] == str(sleeper.pid)
    assert default.processes[0][-1] == "sleep 60"
    assert render_top(default).splitlines()[0].startswith("UID                 PID")
    # BSD-style options without a dash still work (Docker users type `docker top c aux`)
    aux = run_top(cg.pids(), ["aux"])
    assert [row[1] for row in aux.processes] == [str(sleeper.pid)]


def test_remove_tree_bottom_up_and_busy_error(layout):
    cg = Cgroup(layout, f"/dockerbank-test/{uuid.uuid4().hex}")
    nested = Cgroup(layout, cg.path + "/inner/deeper")
    nested.create()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        nested.add_pid(sleeper.pid)
        assert pids_of(cg) == [sleeper.pid]  # recursive, like runc ps
        assert pids_of(cg.path, layout) == [sleeper.pid]
        with pytest.raises(RuntimeFailure, match=f"processes still inside: {sleeper.pid}"):
            cg.remove(timeout=0.1)
        assert nested.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
        removed = cg.remove(timeout=5)
        try:
            Cgroup(layout, "/dockerbank-test").remove(timeout=0)
        except RuntimeFailure:
            pass  # another test's cgroup is still there
    assert not cg.exists() and not nested.exists()
    deepest = [p for p in removed if p.name == "deeper"]
    assert deepest and all(removed.index(d) < removed.index(d.parent) for d in deepest)


def test_sample_of_missing_cgroup_is_not_found(layout):
    with pytest.raises(NotFound):
        read_sample(Cgroup(layout, "/dockerbank-test/does-not-exist"))
    assert pids_of(Cgroup(layout, "/dockerbank-test/does-not-exist")) == []
    assert not oom_killed(Cgroup(layout, "/dockerbank-test/does-not-exist"))


def _runc_bundle(tmp_path: Path, cgroups_path: str) -> Path:
    """A minimal bundle: static busybox as the rootfs, `sleep 100`, own namespaces."""
    bundle = tmp_path / "bundle"
    (bundle / "rootfs" / "bin").mkdir(parents=True)
    busybox = require_binary("busybox")
    (bundle / "rootfs" / "bin" / "busybox").write_bytes(Path(busybox).read_bytes())
    os.chmod(bundle / "rootfs" / "bin" / "busybox", 0o755)
    for applet in ("sh", "sleep"):
        os.symlink("busybox", bundle / "rootfs" / "bin" / applet)
    subprocess.run([require_binary("runc"), "spec", "--bundle", str(bundle)], check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["args"] = ["sleep", "100"]
    spec["process"]["terminal"] = False
    spec["process"].pop("rlimits", None)  # the host's hard limits may be lower (see DESIGN)
    spec["linux"]["cgroupsPath"] = cgroups_path
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


def test_cgroup_of_a_real_runc_container(tmp_path, layout):
    """The cgroup runc makes for ``cgroupsPath=/dockerbank/<id>``: found, read, frozen (runc
    agrees it is paused), and removed in every hierarchy runc used, even name=systemd
    and the hybrid unified tree, as `system check` must do after a crash."""
    runc = require_binary("runc")
    cid = uuid.uuid4().hex + uuid.uuid4().hex
    name = "dbtest-" + cid[:12]
    cg = Cgroup(layout, container_cgroups_path(cid))
    bundle = _runc_bundle(tmp_path, cg.path)
    subprocess.run([runc, "run", "-d", "--bundle", str(bundle), name], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=30)
    try:
        state = json.loads(subprocess.run([runc, "state", name], capture_output=True, check=True).stdout)
        assert cg.pids() == [state["pid"]]
        sample = read_sample(cg, state["pid"])
        assert sample.pids_current == 1 and sample.memory_usage > 0
        assert sample.networks == {}  # own network namespace with only lo
        assert run_top(cg.pids(), ["-o", "pid,args"]).processes == [[str(state["pid"]), "sleep 100"]]
        cg.freeze()
        state = json.loads(subprocess.run([runc, "state", name], capture_output=True, check=True).stdout)
        assert state["status"] == "paused"
        cg.thaw()
        subprocess.run([runc, "kill", name, "KILL"], check=True)
        deadline = time.monotonic() + 5
        while cg.pids() and time.monotonic() < deadline:
            time.sleep(0.01)
        # a crashed engine left the cgroup behind: remove it everywhere
        existing = [d for d in layout.dirs_for(cg.path) if d.is_dir()]
        assert len(existing) >= len(layout.v1_mounts) or layout.mode == "v2"
        removed = cg.remove(timeout=5)
        assert sorted(removed) == sorted(existing)
        assert not cg.exists()
    finally:
        subprocess.run([runc, "delete", "--force", name], check=False, capture_output=True)
        cg.remove(timeout=5)


def test_remove_stale_keeps_known_and_busy(layout):
    parent = f"/dockerbank-test/{uuid.uuid4().hex}"
    known, stale, busy = (Cgroup(layout, f"{parent}/{n}") for n in ("known", "stale", "busy"))
    for cg in (known, stale, busy):
        cg.create()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        busy.add_pid(sleeper.pid)
        report = remove_stale(layout, {"known"}, parent=parent)
        assert report.removed == ["stale"]
        assert report.busy == {"busy": [sleeper.pid]}
        assert known.exists() and busy.exists() and not stale.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
        Cgroup(layout, parent).remove(timeout=5)
        with contextlib.suppress(RuntimeFailure):
            Cgroup(layout, "/dockerbank-test").remove(timeout=0)
    assert not Cgroup(layout, parent).exists()
