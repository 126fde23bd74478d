"""Eight CLI processes creating, starting, stopping and removing containers at once lose and
duplicate nothing; a contested name goes to exactly one of them."""

from __future__ import annotations

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
                              stderr=subprocess.PIPE, env=env, cwd="/work/main") for n in range(8)]
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
