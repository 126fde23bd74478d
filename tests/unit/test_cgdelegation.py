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
        cgroups.container_parent.cache_clear()

    yield use
    cgroups.container_parent.cache_clear()


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
    cgroups.container_parent.cache_clear()
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


# --- system check: leftover container cgroups in the delegated subtree ---------------------------
# This host has cgroup v1/hybrid, which delegates nothing: no rootless container here ever gets a
# cgroup, so a real leftover below a user's delegation cannot be made. The fake tree stands in for
# the cgroup2 filesystem: a cgroup whose processes are gone is an empty directory (cgroupfs lets
# rmdir remove one whose control files remain; a plain directory only when empty), a busy one lists
# its pids in cgroup.procs (which also keeps rmdir from removing it, as the kernel would).

LIVE, STOPPED, REMOVED, YOUNG, BUSY, FOREIGN = (c * 64 for c in "abcdef")
OLD = 3600.0   # seconds since an old leftover was last used (the check's grace is 600)


def leftovers(base: Path) -> None:
    """Container cgroups below ``base``: a live container's (a process in it), a stopped one's and
    a removed one's (both empty, old), a young one of no row (a create under way), a stopped
    container's that still holds a process, and an old busy one of no row (another root's)."""
    import time

    for cid, pids in ((LIVE, "101\n"), (STOPPED, None), (REMOVED, None), (YOUNG, None), (BUSY, "202\n"),
                      (FOREIGN, "303\n")):
        d = base / cid
        d.mkdir(parents=True)
        if pids:
            (d / "cgroup.procs").write_text(pids)
        if cid != YOUNG:
            os.utime(d, (time.time() - OLD, time.time() - OLD))


def test_system_check_finds_and_removes_leftovers_below_the_delegation(tmp_path, rootless_with, monkeypatch):
    """A rootless engine's ``system check`` judges the cgroups below its user's delegated subtree
    (``<user@UID.service>/dockerbank``), where crun rootless put its containers' cgroups, by the
    same rules and code as root's engine below ``/dockerbank``: found (dry run: this root's
    containers only) and removed when empty and not live; busy ones are reported, not touched."""
    from dockerbank.system import check

    reader = v2_tree(tmp_path, "memory pids")
    rootless_with(cd.detect(reader))
    parent = cgroups.container_parent()
    assert parent == f"{USER}/dockerbank"
    base = reader.root / parent.strip("/")
    leftovers(base)
    layout = cgroups.CgroupLayout("v2", unified=reader.root, v2_controllers=frozenset(ALL.split()))
    monkeypatch.setattr(cgroups, "detect_layout", lambda *a: layout)
    live, known = {LIVE}, {LIVE, STOPPED, BUSY}

    found = check.stale_cgroups(layout, parent, live, known, repair=False)
    assert found == [f"found empty {parent}/{STOPPED}"]   # a removed container's: not known as this root's
    assert sorted(p.name for p in base.iterdir()) == sorted([LIVE, STOPPED, REMOVED, YOUNG, BUSY, FOREIGN])

    repaired = check.stale_cgroups(layout, parent, live, known, repair=True, drain_timeout=0.05)
    assert sorted(repaired) == sorted([f"removed empty {parent}/{STOPPED}", f"removed empty {parent}/{REMOVED}",
                                       f"{parent}/{BUSY} of a stopped container still holds processes [202]"])
    assert sorted(p.name for p in base.iterdir()) == sorted([LIVE, YOUNG, BUSY, FOREIGN])
    assert (reader.root / USER.strip("/") / "app.slice" / "dockerbank.scope").is_dir()   # nothing outside the engine's parent is touched

    # the system check's own road (rootless parent, the host's layout) reaches the same cgroups
    (base / STOPPED).mkdir()
    os.utime(base / STOPPED, (0, 0))
    assert check._engine_cgroups(live, known, repair=False) == [f"found empty {parent}/{STOPPED}"]


def test_system_check_of_a_rootless_engine_without_delegation_looks_nowhere(tmp_path, rootless_with, monkeypatch):
    """No delegation (cgroup v1/hybrid as here, or v2 without Delegate=): the engine's containers
    have no cgroup, and root's ``/dockerbank`` is not the rootless engine's to judge."""
    from dockerbank.system import check

    root_tree = tmp_path / "memory"
    leftovers(root_tree / cgroups.CGROUP_PARENT.strip("/"))
    monkeypatch.setattr(cgroups, "detect_layout", lambda *a: cgroups.CgroupLayout("v1", {"memory": root_tree}))
    rootless_with(cd.Delegation(why=cd.V1, reason="cgroup v1/hybrid here"))
    assert cgroups.container_parent() is None
    assert check._engine_cgroups({LIVE}, {LIVE, STOPPED}, repair=True) == []
    assert len(list((root_tree / cgroups.CGROUP_PARENT.strip("/")).iterdir())) == 6


def test_system_check_of_roots_engine_uses_the_same_road_in_every_v1_hierarchy(tmp_path, monkeypatch):
    """Root's engine: ``/dockerbank`` in every hierarchy of a v1/hybrid host (this host's layout),
    judged by the same function as the delegated subtree."""
    from dockerbank.host import rootless
    from dockerbank.system import check

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(rootless, "in_user_namespace", lambda: False)
    cgroups.container_parent.cache_clear()
    try:
        assert cgroups.container_parent() == cgroups.CGROUP_PARENT
        mounts = {"memory": tmp_path / "memory", "pids": tmp_path / "pids"}
        for mount in mounts.values():
            leftovers(mount / cgroups.CGROUP_PARENT.strip("/"))
        layout = cgroups.CgroupLayout("hybrid", mounts, unified=tmp_path / "unified",
                                      named_mounts={"systemd": tmp_path / "systemd"})
        (tmp_path / "unified" / cgroups.CGROUP_PARENT.strip("/") / REMOVED).mkdir(parents=True)
        os.utime(tmp_path / "unified" / cgroups.CGROUP_PARENT.strip("/") / REMOVED, (0, 0))
        monkeypatch.setattr(cgroups, "detect_layout", lambda *a: layout)
        lines = check._engine_cgroups({LIVE}, {LIVE, STOPPED}, repair=True)   # (BUSY: no drain wait)
        parent = cgroups.CGROUP_PARENT
        assert f"removed empty {parent}/{STOPPED}" in lines and f"removed empty {parent}/{REMOVED}" in lines
        for where in (tmp_path / "memory", tmp_path / "pids", tmp_path / "unified"):
            left = {p.name for p in (where / parent.strip("/")).iterdir()}
            assert STOPPED not in left and REMOVED not in left, where
    finally:
        cgroups.container_parent.cache_clear()
