"""Docker's namespace and placement options (container.hostmodes) and their OCI form (runtime.spec)."""

from __future__ import annotations

import pytest

from dockerbank.container import hostmodes as hm
from dockerbank.errors import InvalidArgument
from dockerbank.runtime import spec as sp


def test_modes_checked_with_dockerds_messages():
    assert hm.check_pid_mode("") == ("", None)
    assert hm.check_pid_mode("host") == ("host", None)
    assert hm.check_pid_mode("container:db") == ("container", "db")
    for bad in ("foo", "container", "container:"):
        with pytest.raises(InvalidArgument, match=f"invalid PID mode: {bad}$"):
            hm.check_pid_mode(bad)
    assert hm.check_uts_mode("host", hostname_given=False) == "host"
    with pytest.raises(InvalidArgument, match="hostname and the UTS mode"):
        hm.check_uts_mode("host", hostname_given=True)
    with pytest.raises(InvalidArgument, match="invalid UTS mode: x"):
        hm.check_uts_mode("x", hostname_given=False)
    with pytest.raises(InvalidArgument, match="invalid cgroup namespace mode: foo"):
        hm.check_cgroupns_mode("foo")
    assert hm.check_isolation("default") == "default"
    with pytest.raises(InvalidArgument, match="linux only supports 'default'"):
        hm.check_isolation("hyperv")
    assert hm.check_mac("02-42-AC-11-00-09") == "02:42:ac:11:00:09"
    with pytest.raises(InvalidArgument, match="invalid MAC address"):
        hm.check_mac("02:42")


def test_cpusets_parsed_and_checked_against_the_host():
    assert hm.parse_cpuset("0-2,4") == [0, 1, 2, 4]
    assert hm.format_cpuset([0, 1, 2, 4, 6, 7]) == "0-2,4,6-7"
    assert hm.check_cpuset("1", [0, 1], "cpus") == "1"
    with pytest.raises(InvalidArgument, match="Requested CPUs are not available - requested 0-3, available: 0-1"):
        hm.check_cpuset("0-3", [0, 1], "cpus")
    with pytest.raises(InvalidArgument, match="Requested memory nodes are not available"):
        hm.check_cpuset("1", [0], "mems")
    for bad in ("x", "3-1", "1,", "-1"):
        with pytest.raises(InvalidArgument, match=f"Invalid value {bad} for cpuset cpus"):
            hm.check_cpuset(bad, [0, 1], "cpus")


def test_group_add_and_links():
    group = "root:x:0:\naudio:x:29:\n"
    assert hm.group_ids(["audio", "100", "0"], group) == (29, 100, 0)
    with pytest.raises(InvalidArgument, match="Unable to find group video: no matching entries in group file"):
        hm.group_ids(["video"], group)
    assert hm.parse_link("db") == ("db", "db")
    assert hm.parse_link("/db:alias") == ("db", "alias")


def test_spec_namespaces_cpuset_and_device_rules():
    def build(cfg=None, **inputs):
        base = {"path": "sh", "args": [], "env": [], "hostname": "abc", **(cfg or {})}
        return sp.build_spec(base, sp.SpecInputs(rootfs="/r", **inputs))

    spec = build(pidns=None, own_uts=False, cgroupns=True)
    assert sorted(n["type"] for n in spec["linux"]["namespaces"]) == ["cgroup", "ipc", "mount", "network"]
    assert "hostname" not in spec  # the runtimes refuse a hostname without a UTS namespace
    joined = build(pidns={"type": "pid", "path": "/proc/7/ns/pid"})
    assert {"type": "pid", "path": "/proc/7/ns/pid"} in joined["linux"]["namespaces"]
    res = build({"cpuset_cpus": "0-1", "cpuset_mems": "0", "device_cgroup_rules": ["c 1:3 mr", "b *:* rwm"]})
    assert res["linux"]["resources"]["cpu"] == {"cpus": "0-1", "mems": "0"}
    assert res["linux"]["resources"]["devices"][-2:] == [
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "mr"},
        {"allow": True, "type": "b", "access": "rwm"}]
    with pytest.raises(InvalidArgument, match="invalid device cgroup rule format: 'c 1 r'"):
        sp.device_rule("c 1 r")
