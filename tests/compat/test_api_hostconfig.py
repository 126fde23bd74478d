"""HostConfig fields through the docker SDK: kept, inspected back with docker's defaults, honoured
by the running container (namespaces, cgroups, groups, links, MAC) or refused with dockerd's
messages. The expected values were read from docker 20.10 on this machine with the same calls."""

from __future__ import annotations

import json

import pytest
from api_server import sdk_client

docker = pytest.importorskip("docker", reason="docker SDK missing: pip install -e .[test]")

pytestmark = pytest.mark.compat

FIELDS = ["LogConfig", "RestartPolicy", "VolumesFrom", "Links", "PidMode", "UTSMode", "CgroupnsMode", "GroupAdd",
          "DeviceCgroupRules", "CpusetCpus", "Isolation"]


def _remove_hcnet(sdk) -> None:
    for network in sdk.networks.list(names=["hcnet"]):
        network.remove()


@pytest.fixture
def client(tmp_path, busybox_tar):
    yield from sdk_client(tmp_path, busybox_tar, "1.41", after=_remove_hcnet)


def _fields(container) -> dict:
    host = container.attrs["HostConfig"]
    return {key: host.get(key, "MISSING") for key in FIELDS}


def test_fields_kept_with_docker_defaults_and_bad_values_refused(client):
    plain = client.containers.create("busybox", ["true"], network_mode="none")
    assert _fields(plain) == {
        "LogConfig": {"Type": "json-file", "Config": {}}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "VolumesFrom": None, "Links": None, "PidMode": "", "UTSMode": "", "CgroupnsMode": "host", "GroupAdd": None,
        "DeviceCgroupRules": None, "CpusetCpus": "", "Isolation": ""}
    assert "MacAddress" not in plain.attrs["Config"]
    client.containers.create("busybox", ["true"], name="src", volumes=["/shared"], network_mode="none")
    full = client.containers.create(
        "busybox", ["true"], log_config=docker.types.LogConfig(type="json-file", config={"max-size": "1m"}),
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 3}, volumes_from=["src:ro"], pid_mode="host",
        uts_mode="host", cgroupns="private", group_add=["100", "audio"], device_cgroup_rules=["c 1:3 mr"],
        cpuset_cpus="0", mac_address="02:42:ac:11:00:09", isolation="default", links={"src": "db"})
    assert _fields(full) == {
        "LogConfig": {"Type": "json-file", "Config": {"max-size": "1m"}},
        "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}, "VolumesFrom": ["src:ro"],
        "Links": [f"/src:/{full.name}/db"], "PidMode": "host", "UTSMode": "host",
        "CgroupnsMode": "private", "GroupAdd": ["100", "audio"], "DeviceCgroupRules": ["c 1:3 mr"],
        "CpusetCpus": "0", "Isolation": "default"}
    assert full.attrs["Config"]["MacAddress"] == "02:42:ac:11:00:09"
    assert [m["Destination"] for m in full.attrs["Mounts"]] == ["/shared"]
    joined = client.containers.create("busybox", ["true"], pid_mode="container:src", network_mode="none")
    assert joined.attrs["HostConfig"]["PidMode"] == f"container:{client.containers.get('src').id}"
    before = len(client.containers.list(all=True))
    for kwargs, message in [
        ({"isolation": "hyperv"}, "Invalid isolation: \"hyperv\" - linux only supports 'default'"),
        ({"cgroupns": "foo"}, "invalid cgroup namespace mode: foo"),
        ({"pid_mode": "foo"}, "invalid PID mode: foo"),
        ({"device_cgroup_rules": ["x y"]}, "invalid device cgroup rule format: 'x y'"),
        ({"cpuset_cpus": "99"}, "Requested CPUs are not available - requested 99, available: "),
        ({"cpuset_cpus": "x"}, "Invalid value x for cpuset cpus: invalid format: x"),
        ({"uts_mode": "host", "hostname": "h"}, "Conflicting options: hostname and the UTS mode"),
        ({"log_config": {"Type": "nope"}}, "unknown log driver 'nope'"),
    ]:
        with pytest.raises(docker.errors.APIError) as refused:
            client.containers.create("busybox", ["true"], network_mode="none", **kwargs)
        assert refused.value.status_code == 400 and message in str(refused.value.explanation), kwargs
    assert len(client.containers.list(all=True)) == before  # a refused create leaves nothing
    bad_group = client.containers.create("busybox", ["true"], group_add=["nosuchgroup"], network_mode="none")
    with pytest.raises(docker.errors.APIError, match="Unable to find group nosuchgroup"):
        bad_group.start()


def test_namespaces_groups_cpuset_and_volumes_from_are_honoured(client):
    src = client.containers.run("busybox", ["sh", "-c", "echo shared > /shared/f; exec sleep 60"], name="src",
                                volumes=["/shared"], network_mode="none", detach=True)
    script = ("id; cat /sys/fs/cgroup/cpuset.cpus.effective 2>/dev/null || cat /sys/fs/cgroup/cpuset/cpuset.cpus;"
              " hostname; cat /shared/f; ps -o comm | grep -c '^sleep'; grep -c :/$ /proc/self/cgroup")
    box = client.containers.run("busybox", ["sh", "-c", script], group_add=["100"], cpuset_cpus="0", uts_mode="host",
                                pid_mode="host", volumes_from=["src:ro"], cgroupns="private", network_mode="none",
                                device_cgroup_rules=["c 1:3 mr", "b *:* m"],
                                detach=True)
    assert box.wait()["StatusCode"] == 0
    lines = box.logs().decode().splitlines()
    import os

    assert "groups=100" in lines[0] or ",100" in lines[0]
    assert lines[1] == "0"                       # pinned to CPU 0 by the cgroup
    assert lines[2] == os.uname().nodename        # the host's UTS namespace
    assert lines[3] == "shared"                   # the volume of --volumes-from
    assert int(lines[4]) >= 1                     # the host's PID namespace: src's sleep is seen
    assert int(lines[5]) >= 3                     # a private cgroup namespace: every cgroup is "/"
    joined = client.containers.run("busybox", ["ps", "-o", "pid,comm"], pid_mode="container:src",
                                   network_mode="none", detach=True)
    assert joined.wait()["StatusCode"] == 0
    assert "1 sleep" in " ".join(joined.logs().decode().split())  # src's init is pid 1 here
    src.stop(timeout=0)
    waiting = client.containers.create("busybox", ["true"], pid_mode="container:src", network_mode="none")
    with pytest.raises(docker.errors.APIError, match="cannot join PID of a non running container"):
        waiting.start()


def test_links_and_mac_address_on_a_network(client):
    client.networks.create("hcnet")
    target = client.containers.run("busybox", ["sleep", "60"], name="target", network="hcnet", detach=True)
    box = client.containers.run("busybox", ["sh", "-c", "cat /etc/hosts; cat /sys/class/net/eth0/address"],
                                links={"target": "db"}, network="hcnet", mac_address="02:42:ac:11:00:09", detach=True)
    assert box.wait()["StatusCode"] == 0
    out = box.logs().decode()
    target.reload()
    address = target.attrs["NetworkSettings"]["Networks"]["hcnet"]["IPAddress"]
    assert f"{address}\tdb" in out and f"{address}\ttarget" in out, out
    assert out.strip().endswith("02:42:ac:11:00:09")
    box.reload()
    assert box.attrs["HostConfig"]["Links"] == [f"/target:/{box.name}/db"]
    assert json.dumps(box.attrs["Config"]["MacAddress"]) == '"02:42:ac:11:00:09"'
    with pytest.raises(docker.errors.APIError, match="mac-address and the network mode"):
        client.containers.create("busybox", ["true"], mac_address="02:42:ac:11:00:0a", network_mode="host")


LIMITS = ["ShmSize", "Ulimits", "Sysctls", "OomScoreAdj", "CpuPeriod", "CpuQuota", "MemoryReservation", "IpcMode"]


def test_limits_and_kernel_knobs_honoured_inspected_or_refused(client):
    plain = client.containers.create("busybox", ["true"], network_mode="none")
    assert {k: plain.attrs["HostConfig"].get(k, "MISSING") for k in LIMITS} == {
        "ShmSize": 67108864, "Ulimits": None, "Sysctls": "MISSING", "OomScoreAdj": 0, "CpuPeriod": 0, "CpuQuota": 0,
        "MemoryReservation": 0, "IpcMode": "private"}
    script = ("df -k /dev/shm | tail -1 | awk '{print $2}'; ulimit -n; ulimit -Hn; cat /proc/sys/net/core/somaxconn;"
              " cat /proc/self/oom_score_adj")
    box = client.containers.create(
        "busybox", ["sh", "-c", script], shm_size="128m", ulimits=[docker.types.Ulimit(name="nofile", soft=1024,
                                                                                       hard=2048)],
        sysctls={"net.core.somaxconn": "1024"}, oom_score_adj=200, cpu_period=50000, cpu_quota=25000,
        mem_reservation="64m", ipc_mode="shareable")
    assert {k: box.attrs["HostConfig"].get(k) for k in LIMITS} == {
        "ShmSize": 134217728, "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}],
        "Sysctls": {"net.core.somaxconn": "1024"}, "OomScoreAdj": 200, "CpuPeriod": 50000, "CpuQuota": 25000,
        "MemoryReservation": 67108864, "IpcMode": "shareable"}
    box.start()
    assert box.wait()["StatusCode"] == 0, box.logs()
    assert box.logs().decode().split() == ["131072", "1024", "2048", "1024", "200"]  # as docker 20.10 shows
    before = len(client.containers.list(all=True))
    for kwargs, message in [
        ({"device_requests": [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]},
         'could not select device driver "" with capabilities: [[gpu]]'),
        ({"sysctls": {"vm.swappiness": "1"}}, "sysctl 'vm.swappiness' is not whitelisted"),
        ({"oom_score_adj": 2000}, "Invalid value 2000, range for oom score adj is [-1000, 1000]"),
        ({"ulimits": [docker.types.Ulimit(name="nofile", soft=20, hard=10)]}, "ulimit soft limit must be less"),
        ({"nano_cpus": 10**9, "cpu_period": 50000}, "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
        ({"ipc_mode": "bogus"}, "Invalid IPC mode: bogus"),
        ({"storage_opt": {"size": "1G"}}, "--storage-opt is supported only for overlay over xfs"),
    ]:
        with pytest.raises(docker.errors.APIError) as refused:
            client.containers.create("busybox", ["true"], **kwargs)
        assert refused.value.status_code in (400, 501) and message in refused.value.explanation, kwargs
    assert len(client.containers.list(all=True)) == before
    shared = client.containers.run("busybox", ["sh", "-c", "df -k /dev/shm | tail -1 | awk '{print $2}'"],
                                   ipc_mode="host", network_mode="none", detach=True)
    assert shared.wait()["StatusCode"] == 0
    import os

    assert int(shared.logs().decode().strip()) == os.statvfs("/dev/shm").f_blocks * os.statvfs("/dev/shm").f_frsize \
        // 1024  # the host's /dev/shm
    # IpcMode container:X: the shareable owner's /dev/shm; a private owner refused as dockerd does (500)
    owner = client.containers.run("busybox", ["sh", "-c", "echo api > /dev/shm/f; exec sleep 60"], ipc_mode="shareable",
                                  network_mode="none", detach=True)
    joiner = client.containers.run("busybox", ["sh", "-c", "for i in $(seq 100); do [ -e /dev/shm/f ] && break; "
                                   "sleep 0.05; done; cat /dev/shm/f"], ipc_mode=f"container:{owner.name}",
                                   network_mode="none", detach=True)
    assert joiner.wait()["StatusCode"] == 0 and joiner.logs() == b"api\n"
    assert joiner.attrs["HostConfig"]["IpcMode"] == f"container:{owner.id}"
    with pytest.raises(docker.errors.APIError) as refused:
        client.containers.run("busybox", ["true"], ipc_mode=f"container:{shared.id}", network_mode="none", detach=True)
    assert refused.value.status_code == 500 and refused.value.explanation == (
        f"can't join IPC of container {shared.id}: container {shared.id} is not running")
