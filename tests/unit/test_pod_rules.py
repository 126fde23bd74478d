"""Pods' logic without root: the pure rules (shares, status, joining, filters, the spec's joined
namespaces) and the pod use cases over the container service with fake runtime, conmon, mounts
and network (tests/unit/test_container_service.py's world); tests/integration/test_pods.py runs
them on the real stack."""

from __future__ import annotations

import json

import pytest

from dockerbank.container import model as cmodel
from dockerbank.container.lifecycle import ContainerService
from dockerbank.container.options import CreateOptions
from dockerbank.engine.containers import ContainerEngine
from dockerbank.engine.pods import PodCreateOptions, PodEngine, PodListEntry, PodListOptions, _matches
from dockerbank.errors import Conflict, InvalidArgument, NotFound
from dockerbank.pod import model as pm
from dockerbank.pod.service import PodService
from dockerbank.runtime import spec as sp
from tests.unit.test_container_service import (
    FakeConmon,
    FakeEngine,
    FakeMounts,
    FakeNetwork,
    FakeRuntime,
    World,
)

# --- pure rules -------------------------------------------------------------------------------


def test_share_defaults_additions_and_refusals():
    assert pm.parse_share(None) == ["ipc", "net", "uts"]
    assert pm.parse_share("net") == ["net"] and pm.parse_share("none") == [] and pm.parse_share("") == []
    assert pm.parse_share("+pid") == ["ipc", "net", "uts", "pid"]
    assert pm.parse_share("uts, ipc,uts") == ["uts", "ipc"]
    with pytest.raises(InvalidArgument, match="cgroup namespace is not supported"):
        pm.parse_share("net,cgroup")
    with pytest.raises(InvalidArgument, match="invalid kernel namespace to share: mnt") as refused:
        pm.parse_share("mnt")
    assert refused.value.exit_code == 125


@pytest.mark.parametrize("statuses, expected", [
    ([], "Created"), (["created", "created"], "Created"), (["running", "running"], "Running"),
    (["running", "exited"], "Degraded"), (["running", "created"], "Degraded"), (["exited", "exited"], "Exited"),
    (["exited", "created"], "Stopped"), (["paused", "paused"], "Paused"), (["dead"], "Error"),
    (["restarting", "running"], "Running"),
])
def test_pod_status_follows_podman(statuses, expected):
    assert pm.pod_status(statuses) == expected


def test_members_leave_to_the_pod_what_it_shares():
    share = ["ipc", "net", "uts"]
    ok = pm.member_conflicts(share, network="", network_options={"expose": ["80"]}, hostname=None)
    assert ok is None
    assert "ports must be defined when the pod is created" in pm.member_conflicts(
        share, network="", network_options={"ports": ["80:80"]}, hostname=None)
    assert "network cannot be configured" in pm.member_conflicts(share, network="host", network_options={},
                                                                 hostname=None)
    assert "--dns" in pm.member_conflicts(share, network="", network_options={"dns": ["1.1.1.1"]}, hostname=None)
    assert "cannot set hostname" in pm.member_conflicts(share, network="", network_options={}, hostname="h")
    # what the pod does not share stays the member's own
    assert pm.member_conflicts(["ipc"], network="none", network_options={"ports": ["80"]}, hostname="h") is None
    assert pm.member_modes(share, "abc") == {"network": "container:abc", "ipc": "container:abc",
                                             "uts": "container:abc", "pid": ""}
    assert pm.member_modes(["pid"], "abc")["pid"] == "container:abc"


def test_pod_options_that_cannot_go_together():
    pm.check_create(pm.PodConfig(network_options={"ports": ["80:80"]}))
    with pytest.raises(InvalidArgument, match="does not share its network"):
        pm.check_create(pm.PodConfig(share=["ipc"], network_options={"ports": ["80:80"]}))
    with pytest.raises(InvalidArgument, match="infra container to share"):
        pm.check_create(pm.PodConfig(infra=False, share=["net"]))
    with pytest.raises(InvalidArgument, match="cannot join the network of a container"):
        pm.check_create(pm.PodConfig(network="container:x"))
    assert pm.validate_name("p") == "p"
    with pytest.raises(InvalidArgument, match="invalid pod name"):
        pm.validate_name("-p")


def test_joined_namespaces_get_their_path_and_keep_the_owners_hostname():
    joined = {"ipc": "/proc/7/ns/ipc", "uts": "/proc/7/ns/uts"}
    spec = sp.build_spec({"path": "sh", "hostname": "pod"}, sp.SpecInputs(rootfs="/r", joined_namespaces=joined))
    by_type = {n["type"]: n for n in spec["linux"]["namespaces"]}
    assert by_type["ipc"] == {"type": "ipc", "path": "/proc/7/ns/ipc"}
    assert by_type["uts"]["path"] == "/proc/7/ns/uts" and "path" not in by_type["pid"]
    assert "hostname" not in spec and "HOSTNAME=pod" in spec["process"]["env"]


def _entry(name="web", status="Running", labels=None, ctrs=()):
    pod = pm.Pod("ab" * 32, name, "2026-01-01T00:00:00Z", "cd" * 32, pm.PodConfig(labels=labels or {}))
    containers = [cmodel.Container(cid, cname, "2026", cmodel.ContainerConfig(image="i", image_id="x", path="sh"),
                                   cmodel.ContainerState(status=cstatus)) for cid, cname, cstatus in ctrs]
    return PodListEntry(pod, status, containers)


def test_list_filters_as_podman():
    entry = _entry(labels={"team": "lab"}, ctrs=[("ef" * 32, "web-1", "running"), ("01" * 32, "db", "exited")])
    assert _matches(entry, {"name": ["^we"], "label": ["team=lab"], "status": ["running"], "id": ["abab"]})
    assert _matches(entry, {"ctr-names": ["db"], "ctr-number": ["2"], "ctr-status": ["exited"], "ctr-ids": ["0101"]})
    assert not _matches(entry, {"label": ["team=other"]})
    assert not _matches(entry, {"ctr-number": ["3"]})
    assert not _matches(entry, {"status": ["exited"]})
    assert _matches(entry, {"name": ["nope", "web"]})  # values of one key: any


# --- the use cases over a fake world ------------------------------------------------------------


class PodWorldEngine(FakeEngine):
    """The engine facade over the fake world: containers, pods and their use cases."""

    def __init__(self, root, world):
        super().__init__(root, world)
        self.root, self.world = root, world
        self.containers = ContainerService(self, runtime=FakeRuntime(world), conmon=FakeConmon(world),
                                           mounts=FakeMounts(world), network=FakeNetwork(world))
        self.container_ops = ContainerEngine(self)
        self.pods = PodService(self, infra_image=lambda: "busybox")
        self.pod_ops = PodEngine(self)

    def sibling(self):
        return PodWorldEngine(self.root, self.world)

    def close(self, defer_to=None):
        self.db.close()


@pytest.fixture
def world():
    return World()


@pytest.fixture
def engine(tmp_path, world):
    eng = PodWorldEngine(tmp_path, world)
    yield eng
    eng.db.close()


def _member(engine, name, **kw):
    return engine.container_ops.create(CreateOptions(image="busybox", name=name, pod="p", **kw))


def test_create_makes_the_infra_and_members_join_its_namespaces(engine):
    pod = engine.pod_ops.create(PodCreateOptions(name="p", network_options={"ports": ["8080:80"]}))
    infra = engine.containers.get(pod.infra_id)
    assert infra.config.is_infra and infra.config.pod == pod.id and infra.name == f"{pod.id[:12]}-infra"
    assert infra.config.hostname == "p" and infra.config.network["kind"] == "bridge"
    web = _member(engine, "web")
    joined = f"container:{infra.id}"
    assert (web.config.pod, web.config.ipc_mode, web.config.uts_mode, web.config.pid_mode) == \
        (pod.id, joined, joined, "")
    assert web.config.network_mode == joined and web.config.hostname == "p"
    with pytest.raises(InvalidArgument, match="ports must be defined"):
        _member(engine, "bad", network_options={"ports": ["80"]})
    with pytest.raises(NotFound, match="no pod with name or ID q found") as missing:
        engine.container_ops.create(CreateOptions(image="busybox", pod="q"))
    assert missing.value.exit_code == 125
    assert [c.name for c in engine.pods.members(pod)] == [infra.name, "web"]


def test_start_runs_the_infra_first_and_members_join_its_live_namespaces(engine, world):
    pod = engine.pod_ops.create(PodCreateOptions(name="p"))
    web = _member(engine, "web")
    reports = engine.pod_ops.start(["p"])
    assert reports[0].ok and reports[0].id == pod.id
    starts = [call[1] for call in world.calls if call[0] == "runtime.start"]
    assert starts == [pod.infra_id, web.id]
    spec = json.loads((engine.containers.dir(web.id) / "config.json").read_text())
    pid = world.procs[pod.infra_id].pid
    paths = {n["type"]: n.get("path") for n in spec["linux"]["namespaces"]}
    assert paths["ipc"] == f"/proc/{pid}/ns/ipc" and paths["uts"] == f"/proc/{pid}/ns/uts"
    assert engine.pod_ops.list(PodListOptions())[0].status == "Running"


def test_a_member_started_alone_starts_the_infra_first(engine, world):
    pod = engine.pod_ops.create(PodCreateOptions(name="p"))
    web = _member(engine, "web")
    engine.container_ops.start([web.id])
    assert [call[1] for call in world.calls if call[0] == "runtime.start"] == [pod.infra_id, web.id]


def test_stop_takes_the_members_before_the_infra(engine, world):
    pod = engine.pod_ops.create(PodCreateOptions(name="p"))
    web = _member(engine, "web")
    engine.pod_ops.start(["p"])
    world.calls.clear()
    assert engine.pod_ops.stop(["p"], timeout=1)[0].ok
    signalled = [call[1] for call in world.calls if call[0] == "runtime.signal"]
    assert signalled == [web.id, pod.infra_id]
    assert engine.pod_ops.list(PodListOptions())[0].status == "Exited"


def test_rm_refuses_a_running_pod_without_force_and_forced_takes_everything(engine, world):
    pod = engine.pod_ops.create(PodCreateOptions(name="p"))
    _member(engine, "web")
    engine.pod_ops.start(["p"])
    refused = engine.pod_ops.remove(["p"])[0]
    assert isinstance(refused.error, Conflict) and refused.error.exit_code == 2
    assert len(engine.containers.list()) == 2
    with pytest.raises(Conflict, match="infra container of pod p"):
        raise engine.container_ops.remove([pod.infra_id], force=True)[0].error
    assert engine.pod_ops.remove(["p"], force=True)[0].ok
    assert engine.containers.list() == [] and engine.pods.list() == []
    missing = engine.pod_ops.remove(["p"])[0]
    assert isinstance(missing.error, NotFound) and engine.pod_ops.remove(["p"], ignore=True)[0].ok


def test_nothing_is_left_when_the_infra_or_the_record_fails(engine, world, monkeypatch):
    with pytest.raises(NotFound):  # the infra's network is refused: no container, no pod
        engine.pod_ops.create(PodCreateOptions(name="p", network="nope"))
    assert engine.containers.list() == [] and engine.pods.list() == []

    def taken(pod):
        from dockerbank.pod.store import name_conflict

        raise name_conflict(pod.name)

    monkeypatch.setattr(engine.pods.store, "insert", taken)  # a concurrent create took the name
    with pytest.raises(Conflict, match="pod already exists"):
        engine.pod_ops.create(PodCreateOptions(name="p"))
    assert engine.containers.list() == []


def test_pod_new_name_gets_the_containers_ports_and_goes_again_when_the_container_fails(engine):
    web = engine.container_ops.create(CreateOptions(image="busybox", name="web", pod="new:np", hostname="hh",
                                                    network_options={"ports": ["8080:80"], "expose": ["81"]}))
    pod = engine.pods.get("np")
    infra = engine.containers.get(pod.infra_id)
    assert pod.config.network_options["ports"] == ["8080:80"] and pod.config.hostname == "hh"
    assert infra.config.hostname == "hh" and web.config.pod == pod.id and web.config.hostname == "hh"
    assert web.config.network_mode == f"container:{infra.id}"
    with pytest.raises(Conflict, match='name "/web" is already in use'):
        engine.container_ops.create(CreateOptions(image="busybox", name="web", pod="new:np2"))
    assert [p.name for p in engine.pods.list()] == ["np"] and len(engine.containers.list()) == 2


def test_pause_and_unpause_take_the_running_members(engine, world):
    engine.pod_ops.create(PodCreateOptions(name="p"))
    _member(engine, "web")
    refused = engine.pod_ops.pause(["p"])[0]
    assert isinstance(refused.error, Conflict) and "are running" in refused.error.message
    engine.pod_ops.start(["p"])
    assert engine.pod_ops.pause(["p"])[0].ok
    assert engine.pod_ops.list(PodListOptions())[0].status == "Paused"
    assert engine.pod_ops.unpause(["p"])[0].ok
    assert engine.pod_ops.list(PodListOptions())[0].status == "Running"


def test_an_infra_whose_pod_record_is_gone_can_be_removed(engine):
    pod = engine.pod_ops.create(PodCreateOptions(name="p"))
    engine.pods.store.delete(pod.id)  # a pod create that crashed between the infra and its record
    assert engine.container_ops.remove([pod.infra_id])[0].ok


def test_members_left_running_by_a_stopped_infra_rejoin_the_new_one(engine, world):
    pod = engine.pod_ops.create(PodCreateOptions(name="p"))
    web = _member(engine, "web")
    engine.pod_ops.start(["p"])
    engine.container_ops.stop([pod.infra_id])
    old_pid = world.procs[web.id].pid
    assert engine.pod_ops.list(PodListOptions())[0].status == "Degraded"
    assert engine.pod_ops.start(["p"])[0].ok
    assert world.procs[web.id].pid != old_pid  # started again, in the new infra's namespaces
    spec = json.loads((engine.containers.dir(web.id) / "config.json").read_text())
    paths = {n["type"]: n.get("path") for n in spec["linux"]["namespaces"]}
    assert paths["ipc"] == f"/proc/{world.procs[pod.infra_id].pid}/ns/ipc"
    assert engine.pod_ops.list(PodListOptions())[0].status == "Running"


def test_a_drawn_name_a_concurrent_create_took_is_drawn_again(engine, world, monkeypatch):
    other = engine.sibling()  # another CLI on the same state database
    made = engine.pods._create_infra
    raced = []

    def racing(pod_id, name, config):
        if not raced:  # between the draw and the record, a concurrent create takes the drawn name
            raced.append(other.pod_ops.create(PodCreateOptions(name=name)))
        return made(pod_id, name, config)

    monkeypatch.setattr(engine.pods, "_create_infra", racing)
    pod = engine.pod_ops.create(PodCreateOptions())
    assert pod.name != raced[0].name and sorted(p.name for p in engine.pods.list()) == sorted([pod.name, raced[0].name])
    infras = [c for c in engine.containers.list() if c.config.is_infra]
    assert sorted(c.id for c in infras) == sorted([pod.infra_id, raced[0].infra_id])  # the first infra went
    assert engine.containers.get(pod.infra_id).config.hostname == pod.name  # made again with the new name

    raced.clear()
    with pytest.raises(Conflict, match="pod already exists"):  # a name given is not drawn again
        engine.pod_ops.create(PodCreateOptions(name="given"))
    assert [p.name for p in engine.pods.list()].count("given") == 1 and len(raced) == 1
    assert len([c for c in engine.containers.list() if c.config.is_infra]) == 3
    other.db.close()


def test_a_pods_containers_bind_its_shm_unless_a_mount_of_theirs_is_there():
    def shm(cfg, mounts=()):
        spec = sp.build_spec({"path": "sh", **cfg}, sp.SpecInputs(rootfs="/r", mounts=list(mounts)))
        return [m for m in spec["mounts"] if m["destination"] == "/dev/shm"]

    shared = {"shm_dir": "/run/x/pods/p/shm", "ipc_mode": "container:abc", "shm_size": 1 << 30}
    assert shm(shared) == [{"destination": "/dev/shm", "type": "bind", "source": "/run/x/pods/p/shm",
                            "options": ["rbind", "rprivate", "nosuid", "noexec", "nodev"]}]
    assert shm({"shm_dir": "/run/x/pods/p/shm"})[0]["source"] == "/run/x/pods/p/shm"  # the infra's own
    assert shm({"shm_size": 1 << 20})[0] == {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": [
        "nosuid", "noexec", "nodev", "mode=1777", "size=1048576"]}
    mine = {"destination": "/dev/shm", "type": "bind", "source": "/srv/shm", "options": ["rbind"]}
    assert shm(shared, [mine]) == [mine]


def test_the_pods_shm_is_the_infras_tmpfs_bound_by_members_and_goes_with_the_pod(engine, world):
    pod = engine.pod_ops.create(PodCreateOptions(name="p", shm_size=128 << 20))
    shm = engine.config.run_root / "pods" / pod.id / "shm"
    infra = engine.containers.get(pod.infra_id)
    web = _member(engine, "web", shm_size=1 << 20)  # a member's own --shm-size gives way (podman)
    assert (infra.config.shm_dir, infra.config.shm_size, web.config.shm_dir) == (str(shm), 128 << 20, str(shm))
    assert world.calls.count(("mounts.tmpfs", shm, "mode=1777,size=134217728")) == 0  # not before a start
    engine.container_ops.start([web.id])  # the infra first: it mounts the tmpfs, the member binds it
    mounted = [i for i, c in enumerate(world.calls) if c[0] == "mounts.tmpfs"]
    assert [world.calls[i] for i in mounted] == [("mounts.tmpfs", shm, "mode=1777,size=134217728")]
    assert mounted[0] < world.calls.index(("runtime.start", pod.infra_id)) and shm.is_dir()
    for cid in (pod.infra_id, web.id):
        spec = json.loads((engine.containers.dir(cid) / "config.json").read_text())
        assert [m["source"] for m in spec["mounts"] if m["destination"] == "/dev/shm"] == [str(shm)]
    assert engine.pod_ops.restart(["p"])[0].ok
    assert len([c for c in world.calls if c[0] == "mounts.tmpfs"]) == 1  # still there: not mounted twice
    assert engine.pods.check(repair=True) == []
    assert engine.pod_ops.remove(["p"], force=True)[0].ok
    assert shm not in world.mounted and not shm.parent.exists()

    net_only = engine.pod_ops.create(PodCreateOptions(name="n", share=["net"]))
    alone = engine.container_ops.create(CreateOptions(image="busybox", name="alone", pod="n"))
    assert engine.containers.get(net_only.infra_id).config.shm_dir == "" and alone.config.shm_dir == ""


def test_system_check_takes_the_shm_of_a_pod_that_is_gone(engine, world):
    pod = engine.pod_ops.create(PodCreateOptions(name="p"))
    engine.pod_ops.start(["p"])
    shm = engine.config.run_root / "pods" / pod.id / "shm"
    assert shm in world.mounted and engine.pods.check() == []
    engine.pods.store.delete(pod.id)  # a pod rm killed after its containers went
    found = [f"/dev/shm of removed pod {pod.id[:12]}: unmounted and removed"]
    assert engine.pods.check() == found and shm in world.mounted  # the dry run touches nothing
    assert engine.pods.check(repair=True) == found
    assert shm not in world.mounted and not shm.parent.exists() and engine.pods.check() == []
