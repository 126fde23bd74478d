"""Eight CLI processes creating, starting, stopping and removing containers at once lose and
duplicate nothing; a contested name goes to exactly one of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import require_binary

WORKER = r"""
import subprocess, sys
worker, rounds = sys.argv[1], int(sys.argv[2])
def db(*args):
    return subprocess.run([sys.executable, "-m", "dockerbank", *args], capture_output=True)
failures = []
for i in range(rounds):
    name = f"w{worker}_{i}"
    steps = [("create", "--name", name, "busybox", "sleep", "30"), ("start", name), ("stop", "-t", "0", name),
             ("rm", name)]
    for step in steps:
        result = db(*step)
        if result.returncode != 0:
            failures.append(f"{step}: {result.stderr.decode().strip()}")
contested = db("create", "--name", "contested", "busybox", "true")
print("WON" if contested.returncode == 0 else "LOST:" + contested.stderr.decode().strip())
for failure in failures:
    print("FAIL " + failure)
"""


def test_eight_processes_lose_and_duplicate_nothing(cli, busybox, root, tmp_path):
    require_binary("conmon")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run")
    procs = [subprocess.Popen([sys.executable, str(script), str(n), "3"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env, cwd=str(tmp_path)) for n in range(8)]
    outputs = [p.communicate(timeout=600)[0].decode() for p in procs]
    try:
        assert not [line for text in outputs for line in text.splitlines() if line.startswith("FAIL")], outputs
        assert sum(text.count("WON") for text in outputs) == 1
        lost = [line for text in outputs for line in text.splitlines() if line.startswith("LOST")]
        assert len(lost) == 7 and all("is already in use" in line for line in lost)
        names = cli("ps", "-a", "--format", "{{.Names}}").stdout.decode().split()
        assert names == ["contested"]
        with open("/proc/self/mountinfo") as handle:
            mounts = handle.read()
        assert str(root / "containers") not in mounts
    finally:
        cli("rm", "-f", "contested", check=False)


MIXED = r"""
import json, subprocess, sys
worker, image = sys.argv[1], sys.argv[2]
def db(*args):
    done = subprocess.run([sys.executable, "-m", "dockerbank", *args], capture_output=True)
    return done
failures, locked = [], []
def step(*args, ok=(0,)):
    done = db(*args)
    err = done.stderr.decode()
    if "locked" in err:
        locked.append(err.strip())
    if done.returncode not in ok:
        failures.append(f"{args}: {done.returncode} {err.strip()}")
    return done
step("pull", "-q", image)                                     # eight pulls of one image at once
for i in range(2):
    vol, net, name = f"v{worker}_{i}", f"n{worker}_{i}", f"c{worker}_{i}"
    step("volume", "create", vol)
    step("network", "create", net)
    step("run", "-d", "--name", name, "--network", net, "-v", f"{vol}:/data", image, "sh", "-c",
         f"echo {worker}-{i} > /data/f; exec sleep 30")
    step("backup", "create", "--repo", sys.argv[3], "--consistency", "pause", vol)
    step("stop", "-t", "0", name)
    step("rm", name)
    step("network", "rm", net)
    step("volume", "rm", vol)
print(json.dumps({"failures": failures, "locked": locked}))
"""


def test_eight_clis_and_the_api_service_on_one_root(cli, busybox, root, tmp_path, server):
    """Eight CLI processes (pulls of one image, volumes, networks, containers, backups) and the API
    service (creating and removing containers through the docker SDK) at once: nothing lost or
    duplicated, and no "database is locked" reaches anyone."""
    require_binary("conmon")
    import docker

    from tests.compat.api_server import ApiServer

    image = f"{server.address}/team/bb:1"
    cli("tag", "busybox", image)
    cli("push", image)
    cli("rmi", image)
    script = tmp_path / "mixed.py"
    script.write_text(MIXED)
    repo = tmp_path / "repo"
    env = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run")
    (tmp_path / "api").mkdir()
    api = ApiServer(tmp_path / "api")
    api.root, api.run_root = root, type(root)(str(root) + "-run")
    api.start()
    try:
        procs = [subprocess.Popen([sys.executable, str(script), str(n), image, str(repo)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env, cwd=str(tmp_path)) for n in range(8)]
        client = docker.DockerClient(base_url=api.url, version="1.45", timeout=120)
        sdk_ids = []
        for i in range(4):
            box = client.containers.create("busybox", ["true"], name=f"sdk{i}")
            sdk_ids.append(box.id)
            box.remove(force=True)
        results = [json.loads(p.communicate(timeout=900)[0].decode().strip().splitlines()[-1]) for p in procs]
        client.close()
    finally:
        api.stop()
    assert not [f for r in results for f in r["failures"]], results
    assert not [line for r in results for line in r["locked"]], results
    assert len(set(sdk_ids)) == 4
    assert cli("ps", "-aq").stdout == b""
    assert cli("volume", "ls", "-q").stdout == b""
    assert not [n for n in cli("network", "ls", "--format", "{{.Name}}").stdout.decode().split() if n[0] == "n"]
    assert cli("images", "-q", image).stdout.strip()       # pulled once, stored once
    snapshots = cli("backup", "ls", "--repo", str(repo), "--format", "json").stdout.decode().splitlines()
    assert len(snapshots) == 16                            # one per backup, none lost
    assert cli("backup", "verify", "--repo", str(repo)).returncode == 0
    report = cli("system", "check", "--dry-run", check=False)
    assert report.returncode == 0, report.stdout.decode()
