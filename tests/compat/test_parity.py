"""Parity: each container operation through the Dockerbank CLI and through the Engine API (the
docker CLI and the docker SDK as clients) on one root gives the same result, because both roads
are the one use-case layer (engine.container_ops).

One API service per test module keeps the time small; every test names its own containers.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time

import pytest
from api_server import start_server
from conftest import require_binary

docker_sdk = pytest.importorskip("docker", reason="docker SDK missing: pip install -e .[test]")

pytestmark = pytest.mark.compat

DOCKER = next((p for p in ("/usr/local/bin/docker", "/usr/bin/docker") if os.path.exists(p)), None)


class Both:
    """The two roads to one root: ``db(...)`` the Dockerbank CLI, ``dk(...)`` the docker CLI over
    the API, ``sdk`` the docker SDK over the API."""

    def __init__(self, server, binary: str):
        self.server, self.binary = server, binary
        self.sdk = docker_sdk.DockerClient(base_url=server.url, version="1.45", timeout=60)

    def db(self, *args: str, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess:
        done = self.server.dockerbank(*args, input=input)
        if check:
            assert done.returncode == 0, f"dockerbank {' '.join(args)}: {done.stderr.decode()}"
        return done

    def dk(self, *args: str, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess:
        done = subprocess.run([self.binary, *args], input=input, capture_output=True, timeout=60,
                              env=self.server.env(DOCKER_BUILDKIT="0"))
        if check:
            assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr.decode()}"
        return done

    def running(self, name: str, script: str, *extra: str) -> str:
        return out(self.db("run", "-d", "--network", "none", "--name", name, *extra, "busybox", "sh", "-c", script))


def out(done: subprocess.CompletedProcess) -> str:
    return done.stdout.decode().strip()


def wait_until(condition, what: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def both(tmp_path_factory, busybox_tar):
    binary = DOCKER or require_binary("docker")
    server = start_server(tmp_path_factory.mktemp("parity"), busybox_tar)
    roads = Both(server, binary)
    try:
        yield roads
    finally:
        roads.sdk.close()
        left = out(roads.db("ps", "-aq", check=False)).split()
        if left:
            roads.db("rm", "-f", *left, check=False)
        server.stop()


def test_ps_and_inspect_agree(both):
    cid = both.running("par-ps", "sleep 300", "--label", "team=bio", "-e", "K=v", "--restart", "on-failure:2")
    fmt = "{{.ID}}|{{.Names}}|{{.Image}}|{{.State}}|{{.Labels}}"
    assert out(both.db("ps", "--filter", "label=team=bio", "--format", fmt)) == \
        out(both.dk("ps", "--filter", "label=team=bio", "--format", fmt))
    assert out(both.db("ps", "-a", "-q", "--no-trunc")).split() == out(both.dk("ps", "-a", "-q", "--no-trunc")).split()
    ours = json.loads(out(both.db("inspect", "par-ps")))[0]
    theirs = json.loads(out(both.dk("inspect", "par-ps")))[0]
    sdk = both.sdk.containers.get("par-ps").attrs
    for view in (theirs, sdk):
        view["HostConfig"].pop("LogConfig", None)  # the API names the log driver json-file for docker-py
    ours["HostConfig"].pop("LogConfig", None)
    assert ours == theirs == sdk
    assert ours["Id"] == cid and ours["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    # the same filters are refused the same way
    bad_db = both.db("ps", "--filter", "colour=red", check=False)
    bad_dk = both.dk("ps", "--filter", "colour=red", check=False)
    assert bad_db.returncode != 0 and bad_dk.returncode != 0
    assert "invalid filter 'colour'" in bad_db.stderr.decode() and "invalid filter 'colour'" in bad_dk.stderr.decode()


def test_logs_with_tail_agree(both):
    both.running("par-logs", "for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2; sleep 300")
    wait_until(lambda: b"oops" in both.db("logs", "par-logs").stderr, "the log")
    for tail in ("all", "2", "0"):
        ours, theirs = both.db("logs", "--tail", tail, "par-logs"), both.dk("logs", "--tail", tail, "par-logs")
        assert (ours.stdout, ours.stderr) == (theirs.stdout, theirs.stderr), tail
    tail2 = both.db("logs", "--tail", "2", "par-logs")
    assert (tail2.stdout, tail2.stderr) == (b"line5\n", b"oops\n")  # the last 2 lines of both streams
    sdk = both.sdk.containers.get("par-logs")
    # tail counts the lines of both streams before the stream filter, as dockerd does
    assert sdk.logs(tail=3) == b"line4\nline5\noops\n" and sdk.logs(stderr=False, tail=2) == b"line5\n"
    # a tail that is neither "all" nor a number: one error line from both roads, 400 from the API
    ours, theirs = both.db("logs", "--tail", "abc", "par-logs", check=False), \
        both.dk("logs", "--tail", "abc", "par-logs", check=False)
    assert ours.returncode == theirs.returncode == 1
    for done in (ours, theirs):
        lines = done.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and "failed to parse tail abc" in lines[0]
    api = both.sdk.api  # docker-py's logs() turns a bad tail into "all": ask the endpoint itself
    refused = api._get(api._url("/containers/{0}/logs", "par-logs"), params={"stdout": 1, "tail": "abc"})
    assert refused.status_code == 400 and "failed to parse tail abc" in refused.json()["message"]


def test_top_agrees(both):
    both.running("par-top", "sleep 300")
    sdk = both.sdk.containers.get("par-top").top()

    def pids_and_commands(text: str) -> list[tuple[str, str]]:
        lines = text.splitlines()
        titles = lines[0].split()
        pid, cmd = titles.index("PID"), titles.index("CMD")
        return [(row.split()[pid], " ".join(row.split()[cmd:])) for row in lines[1:]]

    ours = pids_and_commands(out(both.db("top", "par-top")))
    assert ours == pids_and_commands(out(both.dk("top", "par-top")))
    pid_at, cmd_at = sdk["Titles"].index("PID"), sdk["Titles"].index("CMD")
    assert ours == [(p[pid_at], p[cmd_at]) for p in sdk["Processes"]]
    assert [c for _, c in ours] == ["sleep 300"]
    # a stopped container: refused by both
    both.db("create", "--name", "par-top-off", "busybox", "true")
    ours, theirs = both.db("top", "par-top-off", check=False), both.dk("top", "par-top-off", check=False)
    assert ours.returncode == theirs.returncode == 1
    assert "is not running" in ours.stderr.decode() and "is not running" in theirs.stderr.decode()


def test_diff_and_export_agree(both, tmp_path):
    both.running("par-fs", "mkdir -p /data && echo x > /data/f && rm /etc/motd 2>/dev/null; sleep 300")
    wait_until(lambda: "/data/f" in out(both.db("diff", "par-fs")), "the change")
    ours = sorted(out(both.db("diff", "par-fs")).splitlines())
    assert ours == sorted(out(both.dk("diff", "par-fs")).splitlines())
    assert ours == sorted(f"{'CAM D'[c['Kind']] if c['Kind'] < 3 else '?'} {c['Path']}"
                          for c in both.sdk.containers.get("par-fs").diff())
    both.db("export", "-o", str(tmp_path / "ours.tar"), "par-fs")
    both.dk("export", "-o", str(tmp_path / "theirs.tar"), "par-fs")
    sdk_tar = b"".join(both.sdk.containers.get("par-fs").export())

    def members(data: bytes) -> list[tuple[str, int, bytes | None]]:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            return sorted((m.name, m.mode, tar.extractfile(m).read() if m.isfile() and m.size < 4096 else None)
                          for m in tar.getmembers())

    ours_tar = members((tmp_path / "ours.tar").read_bytes())
    assert ours_tar == members((tmp_path / "theirs.tar").read_bytes()) == members(sdk_tar)
    assert ("data/f", 0o644, b"x\n") in ours_tar


def test_kill_and_wait_exit_codes_agree(both):
    trap = 'trap "exit 7" TERM; sleep 300 & wait'
    for name in ("par-k1", "par-k2", "par-t1", "par-t2", "par-s1"):
        both.running(name, trap if "-t" in name else "sleep 300")
    both.db("kill", "par-k1")
    both.dk("kill", "par-k2")
    assert out(both.db("wait", "par-k1")) == out(both.dk("wait", "par-k2")) == "137"
    both.db("kill", "-s", "TERM", "par-t1")
    both.dk("kill", "-s", "TERM", "par-t2")
    assert out(both.dk("wait", "par-t1")) == out(both.db("wait", "par-t2")) == "7"
    sdk = both.sdk.containers.get("par-s1")
    sdk.kill()
    assert sdk.wait()["StatusCode"] == 137
    # an unknown signal: refused by both before anything is sent
    ours, theirs = both.db("kill", "-s", "NOPE", "par-s1", check=False), \
        both.dk("kill", "-s", "NOPE", "par-s1", check=False)
    assert ours.returncode != 0 and theirs.returncode != 0


def test_batch_reports_per_item_like_docker(both):
    for name in ("par-b1", "par-b2", "par-b3", "par-b4"):
        both.running(name, "sleep 300")
    ours = both.db("stop", "-t", "1", "par-b1", "par-none", "par-b2", check=False)
    theirs = both.dk("stop", "-t", "1", "par-b3", "par-none", "par-b4", check=False)
    assert ours.returncode == theirs.returncode == 1
    assert out(ours).splitlines() == ["par-b1", "par-b2"] and out(theirs).splitlines() == ["par-b3", "par-b4"]
    for done in (ours, theirs):
        lines = done.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and "No such container: par-none" in lines[0]
    states = out(both.db("ps", "-a", "--filter", "name=par-b", "--format", "{{.Names}} {{.State}}")).splitlines()
    assert sorted(states) == ["par-b1 exited", "par-b2 exited", "par-b3 exited", "par-b4 exited"]
    # rm of many: the same per-item rendering
    ours = both.db("rm", "par-b1", "par-none", "par-b2", check=False)
    theirs = both.dk("rm", "par-b3", "par-none", "par-b4", check=False)
    assert ours.returncode == theirs.returncode == 1
    assert out(ours).splitlines() == ["par-b1", "par-b2"] and out(theirs).splitlines() == ["par-b3", "par-b4"]


def test_stop_of_many_takes_one_grace_period(both):
    names = [f"par-g{i}" for i in range(4)]
    for name in names:  # sh as PID 1 ignores SIGTERM: each stop waits the whole grace period
        both.running(name, "sleep 300 & wait")
    began = time.monotonic()
    both.db("stop", "-t", "2", *names)
    took = time.monotonic() - began
    assert took < 2 * 2, f"4 stops took {took:.1f} s: not in parallel"
    assert out(both.db("wait", *names)).split() == ["137"] * 4


def test_prune_reports_agree(both):
    for name, label in (("par-p1", "wave=1"), ("par-p2", "wave=2"), ("par-p3", "wave=1")):
        both.db("create", "--name", name, "--label", label, "--label", "pr=yes", "busybox", "true")
    ids = {n: out(both.db("inspect", "-f", "{{.Id}}", n)) for n in ("par-p1", "par-p2", "par-p3")}
    ours = out(both.db("container", "prune", "-f", "--filter", "label=wave=1", "--filter", "label=pr"))
    assert ours.splitlines()[0] == "Deleted Containers:"
    assert sorted(ours.splitlines()[1:3]) == sorted([ids["par-p1"], ids["par-p3"]])
    assert ours.splitlines()[-1].startswith("Total reclaimed space:")
    report = both.sdk.containers.prune(filters={"label!": "wave=1", "label": "pr"})
    assert report["ContainersDeleted"] == [ids["par-p2"]]
    theirs = out(both.dk("container", "prune", "-f", "--filter", "label=pr"))
    assert theirs == "Total reclaimed space: 0B" == out(both.db("container", "prune", "-f", "--filter", "label=pr"))
    ours, theirs = both.db("container", "prune", "-f", "--filter", "colour=red", check=False), \
        both.dk("container", "prune", "-f", "--filter", "colour=red", check=False)
    assert ours.returncode != 0 and theirs.returncode != 0
    assert "invalid filter 'colour'" in ours.stderr.decode() and "invalid filter 'colour'" in theirs.stderr.decode()


def test_update_agrees(both):
    both.running("par-u1", "sleep 300")
    both.running("par-u2", "sleep 300")
    assert out(both.db("update", "--memory", "64m", "--pids-limit", "50", "--restart", "on-failure:3", "par-u1")) \
        == "par-u1"
    assert out(both.dk("update", "--memory", "64m", "--pids-limit", "50", "--restart", "on-failure:3", "par-u2")) \
        == "par-u2"
    fmt = "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}"
    assert out(both.db("inspect", "-f", fmt, "par-u1")) == out(both.dk("inspect", "-f", fmt, "par-u2")) == \
        "67108864 50 on-failure"
    # the running containers' cgroups took the new limit
    usage = "{{.MemUsage}}"
    for name in ("par-u1", "par-u2"):
        assert out(both.db("stats", "--no-stream", "--format", usage, name)).endswith("/ 64MiB")
        assert out(both.dk("stats", "--no-stream", "--format", usage, name)).endswith("/ 64MiB")
    both.sdk.containers.get("par-u2").update(restart_policy={"Name": "always"})
    assert out(both.db("inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", "par-u2")) == "always"


def test_build_in_process_agrees(both, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo run-out && echo run-err >&2\nCMD [\"true\"]\n")
    ours = both.db("build", "--no-cache", "-t", "par-built:db", str(ctx))
    theirs = both.dk("build", "--no-cache", "-t", "par-built:dk", str(ctx))

    def steps(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith(("Step ", "run-out", "Successfully tagged"))]

    assert steps(ours.stdout.decode()) == \
        [s.replace("par-built:dk", "par-built:db") for s in steps(theirs.stdout.decode())]
    # the RUN step's stderr: the terminal's stderr here, the one build stream through the API
    assert "run-err" in ours.stderr.decode() and "run-err" in theirs.stdout.decode()
    fmt = "{{json .Config.Cmd}} {{.RootFS.Layers}}"
    assert out(both.db("image", "inspect", "-f", fmt, "par-built:db")) == \
        out(both.dk("image", "inspect", "-f", fmt, "par-built:dk"))
    # a failing RUN: its exit code is the build's on both roads
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN exit 3\n")
    ours, theirs = both.db("build", str(ctx), check=False), both.dk("build", str(ctx), check=False)
    assert ours.returncode == 3 and theirs.returncode != 0
    assert "returned a non-zero code: 3" in ours.stderr.decode()
    assert "returned a non-zero code: 3" in theirs.stderr.decode()
