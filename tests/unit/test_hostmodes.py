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


def test_limits_and_kernel_knobs_checked_and_in_the_spec():
    assert hm.parse_ulimit("nofile=1024:2048") == {"Name": "nofile", "Soft": 1024, "Hard": 2048}
    assert hm.parse_ulimit("nproc=50") == {"Name": "nproc", "Soft": 50, "Hard": 50}
    for bad, message in [("x=1", "invalid ulimit type: x"), ("nofile", "invalid ulimit argument"),
                         ("nofile=20:10", "ulimit soft limit must be less than or equal to hard limit: 20 > 10")]:
        with pytest.raises(InvalidArgument, match=message):
            hm.parse_ulimit(bad)
    assert hm.check_sysctls({"net.core.somaxconn": "1024", "kernel.shmmax": "1"}, "bridge", "") == {
        "net.core.somaxconn": "1024", "kernel.shmmax": "1"}
    with pytest.raises(InvalidArgument, match="sysctl 'vm.swappiness' is not whitelisted"):
        hm.check_sysctls({"vm.swappiness": "1"}, "bridge", "")
    with pytest.raises(InvalidArgument, match="not allowed in host network namespace"):
        hm.check_sysctls({"net.core.somaxconn": "1"}, "host", "")
    limits = dict(oom_score_adj=0, cpu_period=0, cpu_quota=0, nano_cpus=0, memory=0, memory_reservation=0, shm_size=0)
    for change, message in [({"oom_score_adj": 2000}, "range for oom score adj is"),
                            ({"nano_cpus": 10**9, "cpu_period": 50000}, "Nano CPUs and CPU Period"),
                            ({"cpu_period": 10}, "CPU cfs period"), ({"cpu_quota": 10}, "CPU cfs quota"),
                            ({"memory_reservation": 1024}, "Minimum memory reservation allowed is 6MB"),
                            ({"memory": 10 << 20, "memory_reservation": 20 << 20}, "memory reservation limit")]:
        with pytest.raises(InvalidArgument, match=message):
            hm.check_limits(**{**limits, **change})
    assert hm.check_ipc_mode("private") == "" and hm.check_ipc_mode("shareable") == "shareable"
    with pytest.raises(InvalidArgument, match="Invalid IPC mode: bogus"):
        hm.check_ipc_mode("bogus")
    cfg = {"path": "sh", "args": [], "env": [], "hostname": "h", "shm_size": 128 << 20, "oom_score_adj": 200,
           "ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}], "sysctls": {"net.core.somaxconn": "1024"},
           "cpu_period": 50000, "cpu_quota": 25000, "memory_reservation": 64 << 20}
    spec = sp.build_spec(cfg, sp.SpecInputs(rootfs="/r"))
    shm = next(m for m in spec["mounts"] if m["destination"] == "/dev/shm")
    assert f"size={128 << 20}" in shm["options"] and "size=65536k" not in shm["options"]
    assert {"type": "RLIMIT_NOFILE", "hard": 2048, "soft": 1024} in spec["process"]["rlimits"]
    assert len([r for r in spec["process"]["rlimits"] if r["type"] == "RLIMIT_NOFILE"]) == 1
    assert spec["process"]["oomScoreAdj"] == 200 and spec["linux"]["sysctl"] == {"net.core.somaxconn": "1024"}
    assert spec["linux"]["resources"]["cpu"] == {"period": 50000, "quota": 25000}
    assert spec["linux"]["resources"]["memory"] == {"reservation": 64 << 20}
    host_ipc = sp.build_spec({**cfg, "ipc_mode": "host"}, sp.SpecInputs(rootfs="/r"))
    assert "ipc" not in [n["type"] for n in host_ipc["linux"]["namespaces"]]
    assert next(m for m in host_ipc["mounts"] if m["destination"] == "/dev/shm")["source"] == "/dev/shm"
    no_shm = sp.build_spec({**cfg, "ipc_mode": "none"}, sp.SpecInputs(rootfs="/r"))
    assert "/dev/shm" not in [m["destination"] for m in no_shm["mounts"]]
