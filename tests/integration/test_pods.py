"""Pods on the real stack (the CLI as a subprocess; crun, conmon, overlayfs, netavark): members
share the infra container's network, IPC and UTS namespaces, ports are published at pod level,
the pod starts, stops and goes as one, and bad input creates nothing."""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from pathlib import Path

import pytest

from tests.integration.test_networks_containers import endpoints, free_port

pytestmark = pytest.mark.integration

NS = "for n in ipc uts net; do readlink /proc/self/ns/$n; done"


def _events(root: Path) -> list[dict]:
    from dockerbank.config import Config
    from dockerbank.events.log import EventLog

    return EventLog.of(Config(root=root, run_root=Path(str(root) + "-run"))).read()[0]


def _rows(root: Path, table: str) -> int:
    with sqlite3.connect(root / "state.db") as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_a_pod_of_two_shares_localhost_hostname_ipc_and_its_published_port(ctr, root, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hello from the pod\n")
    port = free_port()
    pod_id = ctr("pod", "create", "--name", "app", "-p", f"127.0.0.1:{port}:80", "--label", "team=lab").stdout.decode().strip()
    assert len(pod_id) == 64
    ctr("run", "-d", "--pod", "app", "--name", "web", "-v", f"{www}:/www:ro", "busybox", "httpd", "-f", "-p", "80",
        "-h", "/www")
    # the other member: the web server on localhost, the pod's hostname, the same namespaces
    # (waiting, up to 10 s, for the server to listen: it starts while this member starts)
    out = ctr("run", "--rm", "--pod", "app", "busybox", "sh", "-c",
              "for i in $(seq 100); do wget -qO- http://localhost/ 2>/dev/null && break; sleep 0.1; done; "
              f"hostname; {NS}").stdout.decode().splitlines()
    web_ns = ctr("exec", "web", "sh", "-c", f"hostname; {NS}").stdout.decode().splitlines()
    assert out[0] == "hello from the pod"
    assert out[1:] == web_ns and web_ns[0] == "app"
    ctr("exec", "web", "grep", "-w", "app", "/etc/hosts")  # the infra's /etc/hosts: the pod's name resolves
    infra = json.loads(ctr("pod", "inspect", "app").stdout)[0]["InfraContainerID"]
    own = ctr("run", "--rm", "busybox", "sh", "-c", NS).stdout.decode().splitlines()
    assert not set(own) & set(web_ns[1:])  # a container outside the pod has namespaces of its own
    # the port is the pod's, reachable from the host
    assert urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read() == b"hello from the pod\n"
    # ps --pod, ps --filter pod=, pod ls and its formats, inspect
    table = ctr("ps", "--pod").stdout.decode().splitlines()
    assert table[0].split()[-3:] == ["POD", "ID", "PODNAME"] and len(table) == 3
    assert all(line.split()[-2:] == [pod_id[:12], "app"] for line in table[1:])
    names = ctr("ps", "-a", "--filter", "pod=app", "--format", "{{.Names}} {{.Pod}}").stdout.decode().split("\n")
    assert sorted(names[:-1]) == sorted([f"web {pod_id[:12]}", f"{pod_id[:12]}-infra {pod_id[:12]}"])
    ls = ctr("pod", "ls").stdout.decode().splitlines()
    assert ls[0].split() == ["POD", "ID", "NAME", "STATUS", "CREATED", "INFRA", "ID", "#", "OF", "CONTAINERS"]
    assert ls[1].split()[:3] == [pod_id[:12], "app", "Running"] and ls[1].split()[-1] == "2"
    assert ctr("pod", "ps", "-q").stdout.decode() == pod_id + "\n"
    assert ctr("pod", "ls", "--format", "{{.Name}} {{.Status}} {{.NumberOfContainers}} {{.Labels.team}}",
               "--filter", "label=team=lab").stdout == b"app Running 2 lab\n"
    assert ctr("pod", "ls", "-q", "--filter", "status=exited").stdout == b""
    doc = json.loads(ctr("pod", "inspect", "app").stdout)[0]
    assert doc["Id"] == pod_id and doc["State"] == "Running" and doc["Hostname"] == ""  # podman: as given
    assert doc["SharedNamespaces"] == ["ipc", "net", "uts"] and doc["NumContainers"] == 2
    assert doc["InfraConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    member = json.loads(ctr("inspect", "web").stdout)[0]
    assert member["HostConfig"]["NetworkMode"] == f"container:{infra}"
    assert (member["HostConfig"]["IpcMode"], member["HostConfig"]["UTSMode"]) == (f"container:{infra}",) * 2
    assert (member["Pod"], member["IsInfra"]) == (pod_id, False)
    assert json.loads(ctr("inspect", "--type", "pod", "app").stdout)[0]["Id"] == pod_id
    assert [e["Action"] for e in _events(root) if e["Type"] == "pod"] == ["create"]
    ctr("pod", "rm", "-f", "-t", "0", "app")
    assert ctr("ps", "-aq").stdout == b"" and _rows(root, "pods") == 0
    assert [e["Action"] for e in _events(root) if e["Type"] == "pod"] == ["create", "remove"]
    assert endpoints(root) == []


def test_a_pod_starts_stops_restarts_and_goes_as_one(ctr, root):
    ctr("pod", "create", "--name", "duo")
    for name in ("one", "two"):  # a member that ends at once on TERM (a shell's trap)
        ctr("create", "--pod", "duo", "--name", name, "busybox", "sh", "-c", "trap 'exit 3' TERM; sleep 600 & wait")
    status = "{{.Names}} {{.State}}"
    assert ctr("pod", "ls", "--format", "{{.Status}}").stdout == b"Created\n"
    pod_id = ctr("pod", "start", "duo").stdout.decode().strip()
    assert sorted(ctr("ps", "--filter", "pod=duo", "--format", status).stdout.decode().split("\n")[:-1]) == \
        sorted([f"{pod_id[:12]}-infra running", "one running", "two running"])
    ctr("stop", "two")
    assert ctr("pod", "ls", "--format", "{{.Status}}").stdout == b"Degraded\n"
    assert ctr("pod", "stop", "duo").stdout.decode().strip() == pod_id
    assert ctr("pod", "ls", "--format", "{{.Status}} {{.ContainerStatuses}}").stdout == b"Exited exited,exited,exited\n"
    assert ctr("ps", "-a", "--filter", "name=one", "--format", "{{.Status}}").stdout.startswith(b"Exited (3)")
    ctr("pod", "restart", "duo")
    assert ctr("pod", "ls", "--format", "{{.Status}}").stdout == b"Running\n"
    assert ctr("pod", "pause", "duo").stdout.decode().strip() == pod_id
    assert ctr("pod", "ls", "--format", "{{.Status}}").stdout == b"Paused\n"
    assert ctr("pod", "unpause", "--all").stdout.decode().strip() == pod_id
    assert ctr("pod", "ls", "--format", "{{.Status}}").stdout == b"Running\n"
    # a member started alone brings the infra whose namespaces it joins
    ctr("pod", "stop", "duo")
    ctr("start", "one")
    assert sorted(ctr("ps", "--format", status).stdout.decode().split("\n")[:-1]) == \
        sorted([f"{pod_id[:12]}-infra running", "one running"])
    # running: rm refuses (podman's 2), rm -f takes members and infra, the record last
    refused = ctr("pod", "rm", "duo", check=False)
    assert refused.returncode == 2 and b"cannot be removed without force" in refused.stderr
    assert ctr("pod", "rm", "-f", "duo").stdout.decode().strip() == pod_id
    assert ctr("ps", "-aq").stdout == b"" and _rows(root, "pods") == 0
    actions = [e["Action"] for e in _events(root) if e["Type"] == "pod"]
    assert actions[:4] == ["create", "start", "stop", "stop"] and actions[-1] == "remove"
    assert "restart" in actions


def test_pod_errors_are_one_line_with_podmans_codes_and_create_nothing(ctr, root):
    for args in (("pod", "start", "nope"), ("pod", "stop", "nope"), ("pod", "kill", "nope"),
                 ("run", "--pod", "nope", "busybox", "true")):
        result = ctr(*args, check=False)
        assert result.returncode == 125, args
        assert result.stderr == b"Error: no pod with name or ID nope found: no such pod\n", args
    missing = ctr("pod", "inspect", "nope", check=False)
    assert (missing.returncode, missing.stderr) == (125, b"Error: inspecting object: no such pod nope\n")
    assert ctr("pod", "rm", "nope", check=False).returncode == 1  # podman's pod rm: 1 for a missing pod
    assert ctr("pod", "rm", "-i", "nope").returncode == 0
    assert ctr("pod", "exists", "nope", check=False).returncode == 1
    # options the pod owns, bad shares, a taken name, a missing network: refused before anything exists
    ctr("pod", "create", "--name", "p")
    before = (ctr("ps", "-aq").stdout, _rows(root, "pods"))
    for args, message in (
            (("run", "--pod", "p", "-p", "8080:80", "busybox", "true"), "ports must be defined when the pod is created"),
            (("run", "--pod", "p", "--network", "none", "busybox", "true"), "network cannot be configured"),
            (("run", "--pod", "p", "--hostname", "h", "busybox", "true"), "cannot set hostname"),
            (("pod", "create", "--name", "p"), 'name "p" is in use: pod already exists'),
            (("pod", "create", "--share", "cgroup"), "cgroup namespace is not supported"),
            (("pod", "create", "--share", "mnt"), "invalid kernel namespace to share: mnt"),
            (("pod", "create", "--network", "missing-net"), "missing-net"),
            (("pod", "create", "-p", "80:80", "--share", "ipc"), "does not share its network namespace"),
            (("pod", "create", "--shm-size", "-1"), "SHM size can not be less than 0")):
        result = ctr(*args, check=False)
        assert result.returncode == 125, args
        err = result.stderr.decode()
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, (args, err)
    assert (ctr("ps", "-aq").stdout, _rows(root, "pods")) == before
    # the infra container goes with its pod only
    infra = json.loads(ctr("pod", "inspect", "p").stdout)[0]["InfraContainerID"]
    refused = ctr("rm", "-f", infra, check=False)
    assert refused.returncode == 1 and b"is the infra container of pod p" in refused.stderr
    ctr("container", "prune", "-f")
    assert ctr("ps", "-aq", "--no-trunc").stdout.decode().split() == [infra]
    ctr("pod", "rm", "p")  # not running: no force needed
    assert ctr("ps", "-aq").stdout == b""


def _shm_mounts(run_root: Path) -> list[str]:
    """The host's mountinfo lines of the pods' /dev/shm tmpfs under ``run_root``."""
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if f" {run_root}/pods/" in line]


def test_pod_members_share_the_pods_dev_shm_and_it_goes_with_the_pod(ctr, root):
    from dockerbank.host.mounts import mount_tmpfs

    run_root = Path(str(root) + "-run")
    pod_id = ctr("pod", "create", "--name", "shm", "--shm-size", "32m").stdout.decode().strip()
    # one member writes and stays; another (its own --shm-size gives way, as podman's) reads and writes
    ctr("run", "-d", "--pod", "shm", "--name", "one", "busybox", "sh", "-c",
        "echo from-one > /dev/shm/one; trap 'exit 0' TERM; sleep 600 & wait")
    out = ctr("run", "--rm", "--pod", "shm", "--shm-size", "8m", "busybox", "sh", "-c",
              "for i in $(seq 100); do [ -e /dev/shm/one ] && break; sleep 0.05; done; cat /dev/shm/one; echo from-two > /dev/shm/two; "
              "df -k /dev/shm | tail -1").stdout.decode().splitlines()
    assert out[0] == "from-one" and out[1].split()[1] == "32768"  # the pod's 32 MiB
    assert ctr("exec", "one", "cat", "/dev/shm/two").stdout == b"from-two\n"
    assert ctr("run", "--rm", "busybox", "ls", "-A", "/dev/shm").stdout == b""  # outside the pod: its own
    mounts = _shm_mounts(run_root)
    assert len(mounts) == 1 and f"/pods/{pod_id}/shm " in mounts[0] and " tmpfs " in mounts[0]
    assert "size=32768k" in mounts[0] and (run_root / "pods" / pod_id / "shm").stat().st_mode & 0o7777 == 0o1777
    ctr("pod", "rm", "-f", "-t", "0", "shm")
    assert _shm_mounts(run_root) == [] and not (run_root / "pods" / pod_id).exists()
    # a pod rm killed between its containers and its record: system check takes the leftover
    pod_id = ctr("pod", "create").stdout.decode().strip()
    ctr("pod", "start", pod_id)
    assert len(_shm_mounts(run_root)) == 1
    ctr("pod", "rm", "-f", "-t", "0", pod_id)  # the pod's containers go...
    leftover = run_root / "pods" / pod_id / "shm"  # ...and a mount left as by a crash before the record went
    leftover.mkdir(parents=True)
    mount_tmpfs(leftover, "size=1m")
    assert len(_shm_mounts(run_root)) == 1
    assert f"pod: /dev/shm of removed pod {pod_id[:12]}: unmounted and removed" in \
        ctr("system", "check").stdout.decode()
    assert _shm_mounts(run_root) == [] and not (run_root / "pods" / pod_id).exists()
