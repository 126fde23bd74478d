"""``--ipc shareable`` / ``--ipc container:X`` over the fake world (tests/unit/test_pod_rules.py's
engine): the owner's /dev/shm tmpfs (container.shmdirs, shared with the pods' code) mounted by its
start, bound by joiners, gone after its exit and with its removal; docker 20.10's refusals.
tests/integration/test_ipc.py runs the same on the real stack."""

from __future__ import annotations

import json

import pytest

from dockerbank.container.options import CreateOptions
from dockerbank.errors import DockerbankError
from tests.unit.test_container_service import World
from tests.unit.test_pod_rules import PodWorldEngine


@pytest.fixture
def world():
    return World()


@pytest.fixture
def engine(tmp_path, world):
    eng = PodWorldEngine(tmp_path, world)
    yield eng
    eng.db.close()


def _create(engine, name, ipc="", **kw):
    return engine.container_ops.create(CreateOptions(image="busybox", name=name, ipc_mode=ipc, **kw))


def _shm_source(engine, cid):
    spec = json.loads((engine.containers.dir(cid) / "config.json").read_text())
    return [(m["type"], m["source"]) for m in spec["mounts"] if m["destination"] == "/dev/shm"]


def _error(results):
    return results[0].error


def test_a_shareable_containers_tmpfs_is_bound_by_joiners_and_goes_with_it(engine, world):
    owner = _create(engine, "owner", "shareable", shm_size=16 << 20)
    shm = engine.config.run_root / "containers" / owner.id / "shm"
    assert owner.config.shm_dir == str(shm) and shm not in world.mounted  # mounted by the start only
    joiner = _create(engine, "joiner", f"container:{owner.name}", shm_size=1 << 20)
    assert joiner.config.ipc_mode == f"container:{owner.id}" and joiner.config.shm_dir == ""
    assert engine.container_ops.start([owner.id])[0].ok
    assert ("mounts.tmpfs", shm, "mode=1777,size=16777216") in world.calls
    assert engine.container_ops.start([joiner.id])[0].ok
    assert _shm_source(engine, owner.id) == _shm_source(engine, joiner.id) == [("bind", str(shm))]
    spec = json.loads((engine.containers.dir(joiner.id) / "config.json").read_text())
    pid = engine.containers.get(owner.id).state.pid
    assert {"type": "ipc", "path": f"/proc/{pid}/ns/ipc"} in spec["linux"]["namespaces"]
    assert engine.containers.check() == []
    world.exit(owner.id, 0)  # docker unmounts it at the exit (joiners keep theirs); a start mounts a new one
    engine.containers.cleanup(owner.id)
    assert shm not in world.mounted and shm.is_dir()
    engine.container_ops.remove([owner.id, joiner.id], force=True)
    assert not shm.parent.exists()
    private = _create(engine, "private")
    assert private.config.shm_dir == "" and not (engine.config.run_root / "containers").joinpath(private.id).exists()


def test_joining_a_private_or_stopped_container_is_refused_with_dockers_words(engine):
    private = _create(engine, "private")
    shareable = _create(engine, "shareable", "shareable")
    host = _create(engine, "host", "host")
    joiners = {name: _create(engine, f"to-{name}", f"container:{name}") for name in ("private", "shareable", "host")}
    refused = _error(engine.container_ops.start([joiners["shareable"].id]))
    assert type(refused) is DockerbankError and refused.http_status == 500 and str(refused) == \
        f"can't join IPC of container {shareable.id}: container {shareable.id} is not running"
    engine.container_ops.start([private.id, shareable.id, host.id])
    refused = _error(engine.container_ops.start([joiners["private"].id]))
    assert str(refused) == (f"can't join IPC of container {private.id}: non-shareable IPC (hint: use "
                            "IpcMode:shareable for the donor container)")
    assert engine.container_ops.start([joiners["host"].id])[0].ok  # a host IPC container is joinable: /dev/shm
    assert _shm_source(engine, joiners["host"].id) == [("bind", "/dev/shm")]
    # a shareable container with a /dev/shm mount of its own is not joinable (dockerd makes no tmpfs for it)
    from dockerbank.volume.mounts import parse_all

    own = _create(engine, "own", "shareable", mounts=parse_all(volumes=[], mounts=[], tmpfs=["/dev/shm/"]))
    assert own.config.shm_dir == ""
    engine.container_ops.start([own.id])
    refused = _error(engine.container_ops.start([_create(engine, "to-own", "container:own").id]))
    assert "non-shareable IPC" in str(refused)


def test_system_check_takes_the_shm_of_removed_and_stopped_shareable_containers(engine, world):
    owner = _create(engine, "owner", "shareable")
    engine.container_ops.start([owner.id])
    shm = engine.config.run_root / "containers" / owner.id / "shm"
    engine.containers.store.update_state(owner.id, lambda s: setattr(s, "status", "exited"))  # a killed clean-up
    found = [f"stale /dev/shm of container {owner.id[:12]} that is not running: unmounted"]
    assert engine.containers._check_shm(False) == found and shm in world.mounted
    assert engine.containers._check_shm(True) == found and shm not in world.mounted
    gone = "ab" * 32
    leftover = engine.config.run_root / "containers" / gone / "shm"
    leftover.mkdir(parents=True)
    world.mounted.add(leftover)
    found = [f"/dev/shm of removed container {gone[:12]}: unmounted and removed"]
    assert engine.containers._check_shm(False) == found
    assert engine.containers._check_shm(True) == found
    assert leftover not in world.mounted and not leftover.parent.exists() and engine.containers._check_shm(False) == []
