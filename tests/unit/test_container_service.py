"""The container service's logic with fakes of its boundaries (runtime, conmon, mounts, network).

No root, no crun, no overlayfs: the state machine (create, start, stop, kill, pause, rm),
restart policies, reconcile after a dead conmon and the unwinding of failed starts run against
an in-memory world of fake processes; the database, locks and events are the real ones in a
temporary root. tests/integration/test_containers*.py run the same service on the real stack.
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dockerbank.config import Config
from dockerbank.container import model
from dockerbank.container.lifecycle import ContainerService, should_restart
from dockerbank.container.options import CreateOptions
from dockerbank.errors import Conflict, InvalidArgument, NotFound, RuntimeFailure
from dockerbank.host.mounts import MountInfo
from dockerbank.runtime.conmon import Started
from dockerbank.state.db import Database

# --- the fake world -------------------------------------------------------------------------


@dataclass
class Proc:
    """A fake container process and its fake conmon."""

    cid: str
    pid: int
    conmon_pid: int
    work: Path
    exit_command: list[str] | None
    started: bool = False
    paused: bool = False
    ignores: set[int] = field(default_factory=set)   # signals the process survives
    conmon_alive: bool = True


class World:
    """Fake processes, mounts and networks, and the ordered log of every boundary call."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.procs: dict[str, Proc] = {}
        self.execs: dict[str, dict] = {}     # exec id -> the process spec conmon got
        self.exits: dict[Path, int] = {}
        self.mounted: set[Path] = set()
        self.next_pid = 4000
        self.fail: dict[str, Exception] = {}   # boundary call name -> error to raise once

    def _maybe_fail(self, name: str) -> None:
        exc = self.fail.pop(name, None)
        if exc is not None:
            raise exc

    def exit(self, cid: str, code: int) -> None:
        """The container's process exits: conmon writes the exit file and goes."""
        proc = self.procs[cid]
        self.exits[proc.work] = code
        proc.conmon_alive = False

    def names(self) -> list[str]:
        return [call[0] for call in self.calls]


class FakeRuntime:
    name = "fake"
    path = "/fake/runtime"

    def __init__(self, world: World):
        self.world = world

    def state_dir(self, cid: str) -> Path:
        return Path("/nonexistent/fake-runtime-state") / cid

    def start(self, cid: str) -> None:
        self.world.calls.append(("runtime.start", cid))
        self.world._maybe_fail("runtime.start")
        self.world.procs[cid].started = True

    def kill(self, cid: str, signal: str | int = "TERM", all_processes: bool = False) -> None:
        raise AssertionError("the service signals the init by pid (Runtime.signal)")

    def signal(self, cid: str, pid: int, sig: int) -> None:
        self.world.calls.append(("runtime.signal", cid, sig))
        proc = self.world.procs[cid]
        assert proc.pid == pid
        if sig not in proc.ignores and sig in (signal.SIGTERM, signal.SIGKILL, signal.SIGINT) \
                and (not proc.paused or sig == signal.SIGKILL):
            self.world.exit(cid, 128 + sig)

    def delete(self, cid: str, force: bool = False) -> None:
        self.world.calls.append(("runtime.delete", cid))

    def state(self, cid: str) -> dict:
        return {"id": cid}

    def pause(self, cid: str) -> None:
        self.world.calls.append(("runtime.pause", cid))
        self.world.procs[cid].paused = True

    def resume(self, cid: str) -> None:
        self.world.calls.append(("runtime.resume", cid))
        self.world.procs[cid].paused = False

    def update(self, cid: str, resources: dict) -> None:
        self.world.calls.append(("runtime.update", cid, resources))


class FakeConmon:
    def __init__(self, world: World):
        self.world = world

    def spawn(self, runtime, cid: str, bundle: Path, *, log_path: Path, terminal: bool, stdin: bool, command: str,
              exit_command: list[str] | None = None, exec_spec: Path | None = None, exec_id: str | None = None,
              attach_first: bool = False, log_args: list[str] | None = None) -> Started:
        self.world.calls.append(("conmon.spawn", cid, exit_command))
        self.world._maybe_fail("conmon.spawn")
        assert (bundle / "config.json").exists()  # the runtime's spec is written before conmon runs
        self.world.next_pid += 2
        if exec_spec is not None:  # an exec session: the container's own process stays as it is
            assert self.world.procs[cid].started and exec_id
            self.world.execs[exec_id] = json.loads(exec_spec.read_text())
            return Started(self.world.next_pid, self.world.next_pid - 1, None)
        work = bundle
        self.world.exits.pop(work, None)
        self.world.procs[cid] = Proc(cid, self.world.next_pid, self.world.next_pid - 1, work, exit_command)
        return Started(self.world.next_pid, self.world.next_pid - 1, None)

    def _proc_of_conmon(self, pid: int) -> Proc | None:
        return next((p for p in self.world.procs.values() if p.conmon_pid == pid), None)

    def alive(self, pid: int, starttime: int = 0) -> bool:
        proc = self._proc_of_conmon(pid)
        return proc is not None and proc.conmon_alive

    def proc_starttime(self, pid: int) -> int:
        return 77

    def read_exit(self, work: Path) -> int | None:
        return self.world.exits.get(Path(work))

    def oom_reported(self, work: Path) -> bool:
        return False

    def wait_exit(self, work: Path, conmon_pid: int, conmon_start: int = 0, timeout: float | None = None, *,
                  exit_command: bool = True) -> int | None:
        self.world.calls.append(("conmon.wait_exit", timeout))
        return self.read_exit(work)  # the fake processes exit at once or never: nothing to wait for

    def connect_attach(self, work: Path):
        raise RuntimeFailure("no attach socket in the fake world")


class FakeMounts:
    def __init__(self, world: World):
        self.world = world

    def mount_overlay(self, target: Path, lowers: list[Path], upper: Path, work: Path, *,
                      layers_dir: Path | None = None) -> None:
        self.world.calls.append(("mounts.mount", Path(target), [Path(p).name for p in lowers]))
        self.world._maybe_fail("mounts.mount")
        self.world.mounted.add(Path(target))

    def unmount(self, path, lazy: bool = True) -> bool:
        self.world.calls.append(("mounts.unmount", Path(path)))
        if Path(path) in self.world.mounted:
            self.world.mounted.discard(Path(path))
            return True
        return False

    def is_mounted(self, path) -> bool:
        return Path(path) in self.world.mounted

    def mount_tmpfs(self, target, data: str) -> None:
        self.world.calls.append(("mounts.tmpfs", Path(target), data))
        self.world.mounted.add(Path(target))

    def overlay_mounts_under(self, root) -> list[MountInfo]:
        return [MountInfo(1, 1, "0:1", "/", str(p), (), (), "overlay", "overlay", ())
                for p in sorted(self.world.mounted) if str(p).startswith(str(root) + "/")]


class FakeNetwork:
    def __init__(self, world: World):
        self.world = world

    def validate_create(self, network_value: str, options: dict) -> dict:
        if network_value == "nope":
            raise NotFound("network nope not found")
        kind = network_value if network_value in ("none", "host") else "bridge"
        return {"kind": kind, **({"networks": ["bridge"]} if kind == "bridge" else {})}

    def up(self, container, base: Path):
        self.world.calls.append(("network.up", container.id))
        self.world._maybe_fail("network.up")
        return {"namespace": f"/run/netns/{container.id[:12]}"}

    def join(self, spec: dict, net) -> None:
        spec.setdefault("linux", {})["fake-netns"] = net["namespace"]

    def down(self, container_id: str, *, background: bool = False) -> None:
        self.world.calls.append(("network.down", container_id, background))


@dataclass
class FakeImage:
    id: str = "sha256:" + "ab" * 32
    top_chain: str = "chain-top"
    short_id: str = "abababababab"


class FakeImages:
    """One image ``busybox`` with two layers and ``CMD ["sh"]``."""

    def __init__(self, layers_dir: Path):
        self.layers = self
        self.layers_dir = layers_dir
        self.image = FakeImage()

    def resolve(self, ref: str) -> FakeImage:
        if ref != "busybox":
            raise NotFound(f"No such image: {ref}")
        return self.image

    def get(self, image_id: str) -> FakeImage:
        return self.image

    def image_config(self, image_id: str) -> dict:
        return {"config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "WorkingDir": ""}}

    def lower_dirs(self, top_chain: str) -> list[Path]:
        return [self.layers_dir / "chain-top" / "diff", self.layers_dir / "chain-base" / "diff"]


class FakeVolumes:
    def __init__(self, world: World):
        self.world = world

    def detach(self, cid: str) -> None:
        self.world.calls.append(("volumes.detach", cid))

    def remove_anonymous_of(self, cid: str) -> None:
        self.world.calls.append(("volumes.remove_anonymous_of", cid))


class FakeEngine:
    """What the service needs of the engine facade: config, database, images, volumes, ``later``."""

    short_lived = False

    def __init__(self, root: Path, world: World):
        self.config = Config(root / "root", root / "run")
        self.db = Database(self.config.db_path)
        self.images = FakeImages(self.config.layers_dir)
        self.volumes = FakeVolumes(world)

    def later(self, work) -> None:
        work()


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def service(tmp_path, world):
    engine = FakeEngine(tmp_path, world)
    svc = ContainerService(engine, runtime=FakeRuntime(world), conmon=FakeConmon(world), mounts=FakeMounts(world),
                           network=FakeNetwork(world))
    yield svc
    engine.db.close()


def _events(service) -> list[str]:
    from dockerbank.events.log import EventLog

    return [e["Action"] for e in EventLog.of(service.config).read()[0]]


def _running(service, world, **create) -> model.Container:
    container = service.create(CreateOptions(image="busybox", **create))
    service.start(container.id)
    world.calls.clear()
    return service.get(container.id)


# --- create and start -----------------------------------------------------------------------

def test_create_records_a_container_without_touching_runtime_mounts_or_network(service, world):
    container = service.create(CreateOptions(image="busybox", name="web", labels={"a": "b"}))
    assert world.calls == []
    got = service.get("web")
    assert got.id == container.id and got.state.status == model.CREATED
    assert (got.config.path, got.config.args, got.config.network["kind"]) == ("sh", [], "bridge")
    base = service.dir(container.id)
    assert all((base / sub).is_dir() for sub in ("upper", "work", "merged", "init"))
    with pytest.raises(Conflict):
        service.create(CreateOptions(image="busybox", name="web"))
    with pytest.raises(InvalidArgument):
        service.create(CreateOptions(image="busybox", restart="always", auto_remove=True))
    with pytest.raises(NotFound):  # the network driver's refusal reaches the caller, nothing is recorded
        service.create(CreateOptions(image="busybox", name="other", network="nope"))
    assert [c.name for c in service.list()] == ["web"]


def test_start_mounts_sets_up_the_network_spawns_conmon_then_starts(service, world):
    container = service.create(CreateOptions(image="busybox", command=["echo", "hi"]))
    service.start(container.id)
    base = service.dir(container.id)
    assert world.names() == ["mounts.mount", "network.up", "conmon.spawn", "runtime.start"]
    mount = world.calls[0]
    assert mount[1] == base / "merged" and mount[2] == ["init", "diff", "diff"]  # the init layer on top
    exit_command = world.calls[2][2]
    assert exit_command[-3:] == ["container", "cleanup", container.id]
    spec = json.loads((base / "config.json").read_text())
    assert spec["process"]["args"] == ["echo", "hi"]
    assert spec["linux"]["fake-netns"].startswith("/run/netns/")
    state = service.get(container.id).state
    assert (state.status, state.pid, state.mounted) == (model.RUNNING, world.procs[container.id].pid, True)
    assert _events(service)[-1] == "start"
    world.calls.clear()
    service.start(container.id)  # already running: nothing happens
    assert world.calls == []


def test_a_stale_mount_no_row_records_is_unmounted_before_the_start_mounts(service, world):
    container = service.create(CreateOptions(image="busybox"))
    merged = service.dir(container.id) / "merged"
    world.mounted.add(merged)  # a crash between a mount and its record: the row says not mounted
    service.start(container.id)
    names = world.names()
    assert names[0] == "mounts.unmount" and names.count("mounts.mount") == 1  # never a second overlay on top
    assert merged in world.mounted and service.get(container.id).state.mounted


def test_no_network_set_up_for_network_none(service, world):
    container = service.create(CreateOptions(image="busybox", network="none"))
    service.start(container.id)
    assert "network.up" not in world.names()
    world.exit(container.id, 0)
    service.cleanup(container.id)
    assert "network.down" not in world.names()


@pytest.mark.parametrize("failing", ["conmon.spawn", "runtime.start", "network.up"])
def test_a_failed_start_unwinds_runtime_mount_and_network(service, world, failing):
    container = service.create(CreateOptions(image="busybox"))
    world.fail[failing] = RuntimeFailure(f"{failing} broke")
    with pytest.raises(RuntimeFailure):
        service.start(container.id)
    base = service.dir(container.id)
    assert base / "merged" not in world.mounted
    assert ("runtime.delete", container.id) in world.calls
    assert ("network.down", container.id, False) in world.calls
    state = service.get(container.id).state
    assert (state.status, state.mounted, state.exit_code) == (model.CREATED, False, 128)
    assert state.error == f"{failing} broke"
    world.calls.clear()
    service.start(container.id)  # the next start works
    assert service.get(container.id).state.status == model.RUNNING


def test_command_not_found_keeps_dockers_exit_code(service, world):
    container = service.create(CreateOptions(image="busybox", command=["nosuch"]))
    world.fail["conmon.spawn"] = RuntimeFailure("exec: \"nosuch\": executable file not found in $PATH",
                                                exit_code=127)
    with pytest.raises(RuntimeFailure):
        service.start(container.id)
    assert service.get(container.id).state.exit_code == 127


# --- stop, kill, pause ----------------------------------------------------------------------

def test_stop_sends_the_stop_signal_and_records_the_exit(service, world):
    container = _running(service, world, stop_signal="SIGINT")
    stopped = service.stop(container.id, timeout=3)
    assert ("runtime.signal", container.id, signal.SIGINT) in world.calls
    assert ("conmon.wait_exit", 3) in world.calls
    assert ("runtime.signal", container.id, signal.SIGKILL) not in world.calls
    state = stopped.state
    assert (state.status, state.exit_code, state.user_stopped, state.pid) == (model.EXITED, 130, True, 0)
    assert service.dir(container.id) / "merged" not in world.mounted
    assert ("network.down", container.id, False) in world.calls
    assert _events(service)[-2:] == ["die", "stop"]
    world.calls.clear()
    assert service.stop(container.id).state.status == model.EXITED  # stopping a stopped one: nothing
    assert world.calls == []


def test_stop_kills_after_the_timeout(service, world):
    container = _running(service, world)
    world.procs[container.id].ignores.add(signal.SIGTERM)
    state = service.stop(container.id, timeout=0.01).state
    signals = [c[2] for c in world.calls if c[0] == "runtime.signal"]
    assert signals == [signal.SIGTERM, signal.SIGKILL]
    assert (state.status, state.exit_code) == (model.EXITED, 137)


def test_kill_signals_and_marks_user_stopped(service, world):
    container = _running(service, world, restart="always")
    service.kill(container.id, "HUP")
    assert world.calls == [("runtime.signal", container.id, signal.SIGHUP)]
    assert service.get(container.id).state.status == model.RUNNING  # HUP does not end the fake
    service.kill(container.id)  # KILL by default
    world.calls.clear()
    state = service.cleanup(container.id)  # what conmon's exit command runs
    assert (state.status, state.exit_code) == (model.EXITED, 137)
    assert "runtime.start" not in world.names()  # a killed container is not restarted, even "always"
    with pytest.raises(Conflict):
        service.kill(container.id)
    with pytest.raises(InvalidArgument):
        service.kill(container.id, "NOPE")


def test_pause_and_unpause(service, world):
    container = _running(service, world)
    service.pause(container.id)
    assert world.calls == [("runtime.pause", container.id)]
    assert service.get(container.id).state.status == model.PAUSED
    with pytest.raises(Conflict, match="already paused"):
        service.pause(container.id)
    service.unpause(container.id)
    assert service.get(container.id).state.status == model.RUNNING
    with pytest.raises(Conflict, match="not paused"):
        service.unpause(container.id)
    service.pause(container.id)
    world.calls.clear()
    state = service.stop(container.id, timeout=1).state  # a paused container is resumed to get its signal
    assert world.names()[:2] == ["runtime.resume", "runtime.signal"]
    assert (state.status, state.exit_code) == (model.EXITED, 143)


def test_update_records_limits_and_policy_and_applies_limits_to_a_running_one(service, world):
    container = _running(service, world)
    world.calls.clear()
    updated = service.update(container.id, memory=64 << 20, pids_limit=50, restart="on-failure:3")
    assert world.calls == [("runtime.update", container.id,
                            {"memory": {"limit": 64 << 20, "swap": 128 << 20}, "pids": {"limit": 50}})]
    assert (updated.config.memory, updated.config.pids_limit) == (64 << 20, 50)
    assert updated.config.restart_policy == {"Name": "on-failure", "MaximumRetryCount": 3}
    world.calls.clear()
    service.update(container.id, restart="always")  # a policy alone: nothing for the runtime
    assert world.calls == []
    with pytest.raises(InvalidArgument, match="Minimum memory limit"):
        service.update(container.id, memory=1024)
    assert service.get(container.id).config.memory == 64 << 20  # a refused update changes nothing


def test_restart_stops_and_starts(service, world):
    container = _running(service, world)
    old_pid = world.procs[container.id].pid
    service.restart(container.id, timeout=1)
    state = service.get(container.id).state
    assert state.status == model.RUNNING and state.pid != old_pid
    assert state.restart_count == 0  # a manual restart does not count, as in docker
    assert _events(service)[-3:] == ["stop", "start", "restart"]


# --- rm ---------------------------------------------------------------------------------------

def test_rm_refuses_a_running_container_and_force_kills_it(service, world):
    container = _running(service, world)
    with pytest.raises(Conflict, match="Stop the container"):
        service.remove(container.id)
    assert world.calls == []
    service.remove(container.id, force=True)
    assert ("runtime.signal", container.id, signal.SIGKILL) in world.calls
    assert ("runtime.delete", container.id) in world.calls
    assert ("volumes.detach", container.id) in world.calls
    assert ("network.down", container.id, False) in world.calls
    assert service.dir(container.id) / "merged" not in world.mounted
    assert not service.dir(container.id).exists()
    with pytest.raises(NotFound):
        service.get(container.id)
    assert _events(service)[-1] == "destroy"


def test_rm_volumes_removes_the_anonymous_ones(service, world):
    container = service.create(CreateOptions(image="busybox"))
    service.remove(container.id, volumes=True)
    assert world.calls == [("volumes.remove_anonymous_of", container.id)]


def test_auto_remove_after_the_exit_tears_down_later(service, world):
    container = _running(service, world, auto_remove=True)
    world.exit(container.id, 0)
    assert service.cleanup(container.id).exit_code == 0
    with pytest.raises(NotFound):
        service.get(container.id)
    # the runtime state and the mount go in Engine.later's work (at once for this long-lived fake)
    assert ("runtime.delete", container.id) in world.calls
    assert [c for c in world.calls if c[0] == "mounts.unmount"][-1][1].parent.name == f".rm-{container.id}"
    # nobody can use a removed container's addresses again: its network goes down in the background too
    assert ("network.down", container.id, True) in world.calls


# --- restart policies and reconcile --------------------------------------------------------

def test_on_failure_restarts_up_to_its_limit(service, world):
    container = _running(service, world, restart="on-failure:2")
    for expected_count in (1, 2):
        world.exit(container.id, 3)
        state = service.cleanup(container.id)
        assert (state.status, state.restart_count) == (model.RUNNING, expected_count)
    world.exit(container.id, 3)
    state = service.cleanup(container.id)
    assert (state.status, state.exit_code, state.restart_count) == (model.EXITED, 3, 2)
    assert world.names().count("runtime.start") == 2


def test_on_failure_does_not_restart_a_clean_exit(service, world):
    container = _running(service, world, restart="on-failure")
    world.exit(container.id, 0)
    assert service.cleanup(container.id).status == model.EXITED
    assert "runtime.start" not in world.names()


def test_restart_that_fails_is_recorded(service, world):
    container = _running(service, world, restart="always")
    world.exit(container.id, 1)
    world.fail["runtime.start"] = RuntimeFailure("cgroup gone")
    state = service.cleanup(container.id)
    assert state.status == model.EXITED
    assert state.error == "restart failed: cgroup gone"


def test_should_restart_rules():
    policy = {"Name": "on-failure", "MaximumRetryCount": 1}
    exited = model.ContainerState(status=model.EXITED, exit_code=1)
    assert should_restart(policy, exited)
    assert not should_restart(policy, model.ContainerState(status=model.EXITED, exit_code=1, restart_count=1))
    assert not should_restart({"Name": "always"}, model.ContainerState(status=model.EXITED, user_stopped=True))
    assert should_restart({"Name": "unless-stopped"}, model.ContainerState(status=model.EXITED))
    assert not should_restart({"Name": "no"}, exited)
    assert not should_restart({"Name": "always"}, model.ContainerState(status=model.RUNNING))


def test_reconcile_after_conmon_died_without_an_exit_file(service, world):
    container = _running(service, world)
    world.procs[container.id].conmon_alive = False  # killed monitor, no exit file, no exit command
    state = service.get(container.id).state
    assert (state.status, state.exit_code, state.mounted) == (model.EXITED, 255, False)
    assert "conmon" in state.error
    assert ("runtime.delete", container.id) in world.calls
    assert ("network.down", container.id, False) in world.calls
    assert _events(service)[-1] == "die"


def test_reconcile_reads_the_exit_file_a_dead_conmon_left(service, world):
    container = _running(service, world)
    world.exit(container.id, 42)  # conmon wrote the exit, its exit command never ran (host busy, killed)
    assert [c.state.exit_code for c in service.list()] == [42]
    world.calls.clear()
    assert service.get(container.id).state.exit_code == 42  # once: nothing more to reconcile
    assert world.calls == []


def test_exec_hands_conmon_the_containers_process_with_the_changes(service, world):
    container = _running(service, world, env=["A=1", "B=1"])
    assert service.exec(container.id, ["env"], detach=True, env=["B=2"], workdir="/tmp") is None
    assert world.names() == ["conmon.spawn"]
    (process,) = world.execs.values()
    assert process["args"] == ["env"] and process["cwd"] == "/tmp" and process["terminal"] is False
    assert "A=1" in process["env"] and "B=2" in process["env"] and "B=1" not in process["env"]
    with pytest.raises(InvalidArgument):
        service.exec(container.id, [])
    service.pause(container.id)
    with pytest.raises(Conflict, match="paused"):
        service.exec(container.id, ["true"])
    service.unpause(container.id)
    service.stop(container.id, timeout=1)
    with pytest.raises(Conflict, match="not running"):
        service.exec(container.id, ["true"])


def test_wait_returns_the_exit_code(service, world):
    container = _running(service, world)
    world.exit(container.id, 5)
    assert service.wait(container.id) == 5


def test_system_check_unmounts_stale_overlays(service, world):
    container = service.create(CreateOptions(image="busybox"))
    stale = service.dir(container.id) / "merged"
    world.mounted.add(stale)  # a killed CLI left the root mounted; the container never ran
    findings = service.check(repair=False)
    assert any("stale overlay mount" in f for f in findings) and stale in world.mounted
    service.check(repair=True)
    assert stale not in world.mounted
    assert service.check(repair=True) == []
