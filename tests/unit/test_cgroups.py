"""Pure parts of host/cgroups.py, container/oom.py, host/mounts.py and host/system.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockerbank.container.oom import parse_oom_v1, parse_oom_v2
from dockerbank.errors import NotSupported
from dockerbank.host.cgroups import (
    Cgroup,
    container_cgroups_path,
    parse_flat_keyed,
    parse_layout,
    remove_tree,
)
from dockerbank.host.mounts import mounts_under, parse_mountinfo, unescape
from dockerbank.host.system import (
    SystemFacts,
    filesystem_name,
    overlay_in_filesystems,
    parse_meminfo_total,
    parse_os_release,
    render_info,
    to_api,
    warnings,
)

# This build machine (hybrid: v1 controllers + an almost empty cgroup2 at unified).
HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""

# Debian 10 style pure v1 with co-mounted controllers.
V1 = """\
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755
27 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:6 - cgroup cgroup rw,xattr,name=systemd
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,net_cls,net_prio
31 25 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,memory
"""

# Debian 12 with systemd: pure cgroup v2.
V2 = """\
22 27 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 22 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
"""

ID = "a" * 64


def test_hybrid_layout_of_this_machine():
    layout = parse_layout(HYBRID, lambda p: "hugetlb\n")
    assert layout.mode == "hybrid"
    assert layout.version == 1 and layout.driver == "cgroupfs"
    assert layout.unified == Path("/sys/fs/cgroup/unified")
    assert layout.v2_controllers == {"hugetlb"}
    assert "systemd" not in layout.v1_mounts and "name=systemd" not in layout.v1_mounts
    assert layout.has("memory") and layout.has("cpuacct") and not layout.has("hugetlb")
    path = container_cgroups_path(ID)
    assert path == f"/dockerbank/{ID}"
    assert layout.dir_for(path, "memory") == Path(f"/sys/fs/cgroup/memory/dockerbank/{ID}")
    dirs = layout.dirs_for(path)
    assert Path(f"/sys/fs/cgroup/unified/dockerbank/{ID}") in dirs  # runc also makes this one
    assert Path(f"/sys/fs/cgroup/systemd/dockerbank/{ID}") in dirs  # and this one
    assert layout.named_mounts == {"systemd": Path("/sys/fs/cgroup/systemd")}
    assert len(dirs) == 10


def test_v1_comounted_controllers_share_a_directory():
    layout = parse_layout(V1)
    assert layout.mode == "v1" and layout.unified is None
    assert layout.v1_mounts["cpu"] == layout.v1_mounts["cpuacct"] == Path("/sys/fs/cgroup/cpu,cpuacct")
    assert layout.has("net_prio")
    assert not layout.has("pids")
    assert layout.dir_for("/dockerbank/x", "pids") is None
    # co-mounted hierarchies appear once in the removal list (plus name=systemd)
    assert len(layout.dirs_for("/dockerbank/x")) == 4


def test_v2_layout():
    layout = parse_layout(V2, lambda p: "cpuset cpu io memory hugetlb pids rdma misc\n")
    assert layout.mode == "v2" and layout.version == 2
    assert layout.unified == Path("/sys/fs/cgroup")
    assert layout.has("memory") and layout.has("blkio") and layout.has("cpuacct") and layout.has("freezer")
    assert layout.dir_for(f"/dockerbank/{ID}", "memory") == Path(f"/sys/fs/cgroup/dockerbank/{ID}")
    assert layout.dir_for(f"/dockerbank/{ID}", "pids") == layout.dir_for(f"/dockerbank/{ID}", "io")
    assert layout.dirs_for(f"/dockerbank/{ID}") == [Path(f"/sys/fs/cgroup/dockerbank/{ID}")]


def test_v2_without_io_controller():
    layout = parse_layout(V2, lambda p: "cpu memory pids\n")
    assert not layout.has("blkio")


def test_no_cgroups_at_all():
    with pytest.raises(NotSupported):
        parse_layout("22 27 0:21 / /sys rw - sysfs sysfs rw\n")


def test_flat_key_files():
    assert parse_flat_keyed("populated 1\nfrozen 0\n") == {"populated": 1, "frozen": 0}


def test_oom_v1_and_v2():
    info = parse_oom_v1("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", "17\n")
    assert info.killed and info.oom_kills == 2 and info.failcnt == 17
    assert not parse_oom_v1("oom_kill_disable 0\nunder_oom 0\n").killed  # kernels before 4.13
    info = parse_oom_v2("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n")
    assert info.killed and info.ooms == 1
    assert not parse_oom_v2("low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n").killed


def test_remove_tree_of_plain_dirs_bottom_up(tmp_path):
    # rmdir semantics are the same on a plain filesystem for empty directories.
    (tmp_path / "cg" / "a" / "b").mkdir(parents=True)
    (tmp_path / "cg" / "c").mkdir()
    removed = remove_tree(tmp_path / "cg")
    assert removed[-1] == tmp_path / "cg"
    assert removed.index(tmp_path / "cg" / "a" / "b") < removed.index(tmp_path / "cg" / "a")
    assert not (tmp_path / "cg").exists()
    assert remove_tree(tmp_path / "cg") == []


def test_cgroup_paths_and_pids_from_fake_tree(tmp_path):
    # A fake v2 tree on a plain filesystem: pids are collected recursively.
    text = f"26 22 0:24 / {tmp_path} rw - cgroup2 cgroup2 rw\n"
    layout = parse_layout(text, lambda p: "memory pids\n")
    cg = Cgroup(layout, "/dockerbank/x")
    (tmp_path / "dockerbank" / "x" / "sub").mkdir(parents=True)
    (tmp_path / "dockerbank" / "x" / "cgroup.procs").write_text("12\n7\n")
    (tmp_path / "dockerbank" / "x" / "sub" / "cgroup.procs").write_text("99\n")
    assert cg.exists()
    assert cg.pids() == [7, 12, 99]
    assert Cgroup(layout, "/dockerbank/absent").pids() == []


# ------------------------------------------------------------------ mounts

MOUNTINFO = r"""22 27 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
100 27 0:50 / /var/lib/dockerbank/containers/abc/merged rw,relatime - overlay overlay rw,lowerdir=/l/2:/l/1,upperdir=/c/abc/upper,workdir=/c/abc/work
101 100 0:51 / /var/lib/dockerbank/containers/abc/merged/dev rw,nosuid master:3 - tmpfs tmpfs rw,mode=755
102 27 0:52 / /var/lib/dockerbank/containers/with\040space/merged rw - overlay overlay rw,lowerdir=/l/1,upperdir=/u,workdir=/w
103 27 0:53 / /var/lib/dockerbankX/merged rw - overlay overlay rw,lowerdir=/l/1
"""


def test_parse_mountinfo_fields_and_escapes():
    mounts = parse_mountinfo(MOUNTINFO)
    assert len(mounts) == 5
    ovl = mounts[1]
    assert ovl.fstype == "overlay" and ovl.mount_id == 100 and ovl.parent_id == 27
    assert ovl.super_option("upperdir") == "/c/abc/upper"
    assert ovl.super_option("lowerdir") == "/l/2:/l/1"
    assert mounts[2].optional == ("master:3",)
    assert mounts[3].mount_point == "/var/lib/dockerbank/containers/with space/merged"
    assert unescape(r"a\011b\134c") == "a\tb\\c"


def test_mounts_under_deepest_first_and_prefix_safe():
    mounts = parse_mountinfo(MOUNTINFO)
    under = mounts_under(mounts, "/var/lib/dockerbank/containers/")
    assert [m.mount_id for m in under] == [101, 102, 100]
    assert all(m.mount_id != 103 for m in under)  # /var/lib/dockerbankX is not below the root
    overlays = mounts_under(mounts, "/var/lib/dockerbank", "overlay")
    assert {m.mount_id for m in overlays} == {100, 102}


# ------------------------------------------------------------------ system facts

def _facts(**over) -> SystemFacts:
    base = {
        "kernel_version": "6.1.0-13-amd64", "operating_system": "Debian GNU/Linux 12 (bookworm)",
        "os_type": "linux", "architecture": "x86_64", "ncpu": 2, "mem_total": 25276063744, "name": "vm",
        "root_dir": "/var/lib/dockerbank", "cgroup_mode": "v2", "cgroup_version": 2,
        "cgroup_driver": "cgroupfs", "cgroup_controllers": ["cpu", "memory"],
        "runtimes": {"crun": "/usr/bin/crun"}, "default_runtime": "crun", "storage_driver": "overlay2",
        "backing_filesystem": "extfs", "supports_d_type": True, "overlay_supported": True,
        "memory_limit": True, "swap_limit": True, "cpu_cfs": True, "cpu_shares": True, "pids_limit": True,
        "blkio_weight": True, "freezer": True,
    }
    base.update(over)
    return SystemFacts(**base)


def test_system_pure_parsers():
    assert parse_os_release('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n') \
        == "Debian GNU/Linux 12 (bookworm)"
    assert filesystem_name(0xEF53) == "extfs" and filesystem_name(0x58465342) == "xfs"
    assert filesystem_name(0x1234) == "<unknown>"
    assert overlay_in_filesystems("nodev\tsysfs\nnodev\toverlay\n")
    assert not overlay_in_filesystems("nodev\tsysfs\n\text4\n")
    assert parse_meminfo_total("MemTotal:       24683656 kB\nMemFree: 1 kB\n") == 24683656 * 1024


def test_system_info_rendering_and_warnings():
    facts = _facts()
    assert warnings(facts) == []
    lines = render_info(facts)
    assert " Cgroup Version: 2" in lines and " Cgroup Driver: cgroupfs" in lines
    assert " Total Memory: 23.54GiB" in lines  # same figure docker info prints on this machine
    assert "  Backing Filesystem: extfs" in lines
    api = to_api(facts)
    assert api["CgroupVersion"] == "2" and api["Driver"] == "overlay2" and api["NCPU"] == 2
    assert api["Runtimes"] == {"crun": {"path": "/usr/bin/crun"}}
    bad = _facts(swap_limit=False, blkio_weight=False, overlay_supported=False, runtimes={})
    assert "WARNING: No swap limit support" in warnings(bad)
    assert "WARNING: No blkio weight support" in warnings(bad)
    assert any("overlay" in w for w in warnings(bad))
    assert any("runtime" in w for w in warnings(bad))


def test_remove_stale_goes_on_past_a_cgroup_it_cannot_remove(tmp_path):
    """One cgroup that refuses its removal (another root's container moved in meanwhile) must not
    keep ``system check --repair`` from removing the others; the refusal is reported."""
    from dockerbank.host.cgroups import CgroupLayout, remove_stale

    mount = tmp_path / "memory"
    for name in ("aaa", "bbb", "ccc"):
        (mount / "dockerbank" / name).mkdir(parents=True)
    (mount / "dockerbank" / "aaa" / "stuck").write_text("")   # a plain file: rmdir fails (not empty)
    layout = CgroupLayout(mode="v1", v1_mounts={"memory": mount})
    report = remove_stale(layout, keep={"ccc"}, parent="dockerbank", timeout=0.1)
    assert report.removed == ["bbb"] and list(report.failed) == ["aaa"]
    assert "cannot remove cgroup" in report.failed["aaa"]
    assert sorted(p.name for p in (mount / "dockerbank").iterdir()) == ["aaa", "ccc"]


def test_cgroup_parent_from_the_environment(monkeypatch):
    from dockerbank.host.cgroups import _parent_from_env

    for value, expected in (("", "/dockerbank"), ("/lab/dockerbank/", "/lab/dockerbank"), ("x", "/x"),
                            ("/../etc", "/dockerbank"), ("//", "/dockerbank")):
        monkeypatch.setenv("DOCKERBANK_CGROUP_PARENT", value)
        assert _parent_from_env() == expected, value
