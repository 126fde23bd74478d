"""Rootless resource limits: which cgroup controllers the host delegates to the user (a fake
cgroup tree in tmp_path, owned as systemd's Delegate= leaves it) and what a rootless container
may then ask for (issue 21). No host here has cgroup v2: this is the delegated road's only test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockerbank.container.options import CreateOptions
from dockerbank.errors import NotSupported
from dockerbank.host import cgdelegation as cd
from dockerbank.host import cgroups
from dockerbank.runtime import spec as sp

UID = 1000
USER = "/user.slice/user-1000.slice/user@1000.service"
ALL = "cpuset cpu io memory hugetlb pids rdma misc"


def v2_tree(tmp_path: Path, delegated: str, *, own: str = f"{USER}/app.slice/dockerbank.scope",
            owner_of_user_service: int = UID) -> cd.CgroupReader:
    """A cgroup2 tree like systemd makes it: root's slices, the user's ``user@1000.service`` (and
    what is below it) owned by the user, ``delegated`` listed in its cgroup.controllers."""
    root = tmp_path / "cgroup"
    (root / "cgroup.controllers").parent.mkdir(parents=True)
    (root / "cgroup.controllers").write_text(ALL + "\n")
    parts = own.strip("/").split("/")
    user_depth = parts.index("user@1000.service") + 1 if "user@1000.service" in parts else len(parts) + 1
    for depth in range(1, len(parts) + 1):
        d = root.joinpath(*parts[:depth])
        d.mkdir()
        for name in ("cgroup.procs", "cgroup.subtree_control", "cgroup.controllers"):
            (d / name).write_text("")
        if depth == user_depth:
            (d / "cgroup.controllers").write_text(delegated + "\n")
        if depth >= user_depth:
            for p in (d, d / "cgroup.procs", d / "cgroup.subtree_control"):
                os.chown(p, owner_of_user_service, owner_of_user_service)
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text(f"0::{own}\n")
    return cd.CgroupReader(root, proc, uid=UID)


def test_v1_and_hybrid_hosts_delegate_nothing(tmp_path):
    root = tmp_path / "cgroup"
    (root / "unified").mkdir(parents=True)            # hybrid: a tmpfs with v1 mounts and a bare cgroup2
    (root / "unified" / "cgroup.controllers").write_text("")
    (root / "memory").mkdir()
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text(f"12:memory:{USER}\n1:name=systemd:{USER}/app.slice\n0::{USER}/app.slice\n")
    found = cd.detect(cd.CgroupReader(root, proc, uid=UID))
    assert found.why == cd.V1 and not found.controllers and found.parent() is None
    assert "cgroup v1/hybrid" in found.statement() and "cannot limit resources" in found.statement()
    assert "\n" not in found.statement()


def test_v2_without_delegation_says_why(tmp_path):
    session = v2_tree(tmp_path / "ssh", "memory pids", own="/user.slice/user-1000.slice/session-3.scope")
    found = cd.detect(session)
    assert found.why == cd.NOT_OWNED and "session-3.scope" in found.reason and "systemd-run --user" in found.reason
    nothing = cd.detect(v2_tree(tmp_path / "none", ""))
    assert nothing.why == cd.NONE and nothing.base == USER and "Delegate=" in nothing.reason
    root_owned = cd.detect(v2_tree(tmp_path / "root", "memory pids", owner_of_user_service=0))
    assert root_owned.why == cd.NOT_OWNED
    inside = cd.detect(v2_tree(tmp_path / "in", "memory pids", own=USER))   # the process sits in the user's top
    assert inside.why == cd.INTERNAL and not inside.controllers
    for d in (found, nothing, root_owned, inside):
        assert cd.refusal(d, CreateOptions(image="x", memory=1 << 26)) == d.statement()
        assert cd.refusal(d, CreateOptions(image="x")) is None


def test_v2_with_memory_and_pids_delegated(tmp_path):
    found = cd.detect(v2_tree(tmp_path, "memory pids"))
    assert found.controllers == {"memory", "pids"} and found.base == USER
    assert found.parent() == f"{USER}/dockerbank" and found.missing == ["cpu", "cpuset", "io"]
    assert "memory, pids are delegated" in found.statement() and "not delegated: cpu, cpuset, io" in found.statement()
    ok = CreateOptions(image="x", memory=1 << 26, memory_swap=-1, pids_limit=10)
    assert cd.refusal(found, ok) is None
    line = cd.refusal(found, CreateOptions(image="x", memory=1 << 26, nano_cpus=10 ** 9, blkio_weight=300))
    assert line is not None and "\n" not in line
    assert "--cpus, --blkio-weight" in line and "cpu/io controllers" in line and "--memory" not in line.split(":")[0]
    assert "systemctl edit user@.service" in line and "Delegate=cpu cpuset io memory pids" in line


def test_v2_with_everything_delegated(tmp_path):
    found = cd.detect(v2_tree(tmp_path, ALL))
    assert found.controllers == set(cd.CONTROLLERS) and not found.missing and "not delegated" not in found.statement()
    every = CreateOptions(image="x", memory=1 << 26, memory_swap=1 << 27, memory_reservation=1 << 25, nano_cpus=5 * 10 ** 8,
                          cpu_shares=512, cpu_period=100000, cpu_quota=50000, pids_limit=10, blkio_weight=300,
                          cpuset_cpus="0", cpuset_mems="0")
    assert set(cd.requested(every).values()) == set(cd.CONTROLLERS)
    assert cd.refusal(found, every) is None


@pytest.fixture
def rootless_with(monkeypatch):
    """Make this process look like a rootless engine whose host answers the given delegation."""
    from dockerbank.host import rootless

    def use(delegation: cd.Delegation) -> None:
        monkeypatch.setattr(rootless, "in_user_namespace", lambda: True)
        monkeypatch.setattr(cd, "current", lambda: delegation)
        cgroups._rootless_parent.cache_clear()

    yield use
    cgroups._rootless_parent.cache_clear()


def test_the_container_decision_and_its_spec(tmp_path, rootless_with):
    from dockerbank.container.lifecycle import _rootless_limits

    rootless_with(cd.detect(v2_tree(tmp_path, "memory pids")))
    cid = "a" * 64
    _rootless_limits(CreateOptions(image="x", memory=1 << 26, pids_limit=10))      # allowed: no error
    with pytest.raises(NotSupported) as err:
        _rootless_limits(CreateOptions(image="x", cpu_shares=512))
    assert err.value.exit_code == 125 and "--cpu-shares" in err.value.message and "cpu controller" in err.value.message
    path = cgroups.spec_cgroups_path(cid)
    assert path == f"{USER}/dockerbank/{cid}" == cgroups.container_cgroups_path(cid)   # stats read the same cgroup
    spec = sp.build_spec({"path": "sh", "args": [], "env": [], "hostname": "h", "memory": 1 << 26, "pids_limit": 10},
                         sp.SpecInputs(rootfs="/r", cgroups_path=path))
    assert spec["linux"]["cgroupsPath"] == path
    assert spec["linux"]["resources"]["memory"]["limit"] == 1 << 26 and spec["linux"]["resources"]["pids"]["limit"] == 10

    rootless_with(cd.detect(v2_tree(tmp_path / "none", "")))   # nothing delegated: no cgroup at all, as today
    assert cgroups.spec_cgroups_path(cid) is None
    with pytest.raises(NotSupported) as err:
        _rootless_limits(CreateOptions(image="x", memory=1 << 26))
    assert "cannot limit resources" in err.value.message and "no controller delegated" in err.value.message


def test_root_engine_keeps_its_cgroup_parent():
    cgroups._rootless_parent.cache_clear()
    if os.geteuid() == 0:
        assert cgroups.spec_cgroups_path("b" * 64) == f"{cgroups.CGROUP_PARENT}/{'b' * 64}"


def test_system_info_as_a_rootless_engine_sees_it(tmp_path):
    from dataclasses import replace

    from dockerbank.host import system

    facts = system.SystemFacts(
        kernel_version="6.1", operating_system="Debian", os_type="linux", architecture="x86_64", ncpu=2,
        mem_total=1 << 30, name="h", root_dir="/r", cgroup_mode="v2", cgroup_version=2, cgroup_driver="cgroupfs",
        cgroup_controllers=["cpu", "io", "memory", "pids"], runtimes={"crun": "/usr/bin/crun"}, default_runtime="crun",
        storage_driver="overlay2", backing_filesystem="extfs", supports_d_type=True, overlay_supported=True,
        memory_limit=True, swap_limit=True, cpu_cfs=True, cpu_shares=True, pids_limit=True, blkio_weight=True,
        freezer=True)
    partial = system.to_api(system.rootless_facts(facts, cd.detect(v2_tree(tmp_path / "p", "memory pids"))))
    assert partial["CgroupDriver"] == "cgroupfs" and partial["CgroupVersion"] == "2"
    assert partial["MemoryLimit"] and partial["PidsLimit"] and not partial["CpuCfsQuota"]
    assert "WARNING: No cpu cfs quota support" in partial["Warnings"]
    v1 = replace(facts, cgroup_mode="hybrid", cgroup_version=1)
    none = system.to_api(system.rootless_facts(v1, cd.Delegation(why=cd.V1, reason="cgroup v1/hybrid here")))
    assert none["CgroupDriver"] == "none" and not none["MemoryLimit"]
    assert any(w.startswith("WARNING: Running in rootless-mode without cgroups:") and "v1/hybrid" in w
               for w in none["Warnings"])
