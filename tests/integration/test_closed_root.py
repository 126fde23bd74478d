"""A Dockerbank root is closed to the other users of the host (issue 20, item 5; CVE-2021-41091).

An ordinary user (``nobody``) tries to read what Dockerbank keeps: volumes' files, container configs
with their ``-e`` secrets, logs, the state database, container root filesystems, the run root.
Every attempt must be refused, while a control file beside the root stays readable to them (so the
test would see a leak if there were one).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import remove_containers, require_binary, run_cli

pytestmark = pytest.mark.integration

NOBODY = 65534

# Run as nobody: try each path, print what happened to it.
PROBE = r"""
import json, os, sqlite3, sys
results = {}
for kind, path in json.loads(sys.argv[1]):
    try:
        if kind == "read":
            with open(path, "rb") as handle:
                handle.read(64)
        elif kind == "list":
            os.listdir(path)
        elif kind == "sqlite":
            conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
            conn.execute("SELECT count(*) FROM containers").fetchone()
        results[path] = "read"
    except (OSError, sqlite3.Error) as exc:
        results[path] = type(exc).__name__ + ": " + str(exc)
print(json.dumps(results))
"""


def as_nobody(probes: list[tuple[str, str]]) -> dict[str, str]:
    done = subprocess.run(["/usr/bin/python3", "-I", "-c", PROBE, json.dumps(probes)], user=NOBODY, group=NOBODY,
                          extra_groups=[], capture_output=True, text=True, timeout=60, cwd="/")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_parent():
    """A directory every user may enter, holding the root (pytest's own tmp dirs are 0700, which
    would hide a leak)."""
    require_binary("conmon")
    base = Path(tempfile.mkdtemp(prefix="dbk-closed-", dir="/tmp"))
    os.chmod(base, 0o755)
    root = base / "root"
    yield root
    remove_containers(root)
    shutil.rmtree(base, ignore_errors=True)
    shutil.rmtree(str(root) + "-run", ignore_errors=True)


def wait_for(condition, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_an_ordinary_user_reads_nothing_of_a_root(open_parent):
    root = open_parent
    run_root = Path(str(root) + "-run")
    control = root.parent / "control.txt"
    control.write_text("readable by anyone\n")
    os.chmod(control, 0o644)
    run_cli(root, "base-image", "busybox")
    run_cli(root, "volume", "create", "research")
    cid = run_cli(root, "run", "-d", "--name", "c1", "-e", "DB_PASSWORD=marker-secret", "-v", "research:/data",
                  "busybox", "sh", "-c", "echo patient-data > /data/f; echo logged-line; exec sleep 300",
                  ).stdout.decode().strip()
    data_file = root / "volumes" / "research" / "_data" / "f"
    wait_for(data_file.exists, what="the container's write to its volume")
    container_dir = root / "containers" / cid
    wait_for(lambda: b"logged-line" in (container_dir / "ctr.log").read_bytes(), what="the container's log")
    assert b"marker-secret" in (container_dir / "config.json").read_bytes()

    probes = [("read", str(control)), ("read", str(data_file)), ("list", str(data_file.parent)),
              ("read", str(container_dir / "config.json")), ("read", str(container_dir / "ctr.log")),
              ("list", str(container_dir / "merged")), ("read", str(container_dir / "merged" / "bin" / "busybox")),
              ("sqlite", str(root / "state.db")), ("list", str(root)), ("list", str(run_root))]
    results = as_nobody(probes)
    assert results.pop(str(control)) == "read", "the probe cannot read a file open to all: it proves nothing"
    leaks = {path: outcome for path, outcome in results.items() if not outcome.startswith(("PermissionError",
                                                                                          "OperationalError"))}
    assert not leaks, f"an ordinary user got at: {leaks}"
    assert all("denied" in outcome or "unable to open" in outcome for outcome in results.values()), results

    assert mode(root) == 0o700 and mode(run_root) == 0o700
    assert mode(root / "state.db") == 0o600
    assert mode(container_dir) == 0o700 and mode(container_dir / "config.json") == 0o600
    assert mode(root / "volumes" / "research") == 0o700
    # the container itself is unaffected: it reads its volume and runs as before
    assert run_cli(root, "exec", "c1", "cat", "/data/f").stdout == b"patient-data\n"


def test_loosened_modes_are_reported_and_closed(open_parent):
    root = open_parent
    run_cli(root, "base-image", "busybox")
    run_cli(root, "volume", "create", "research")
    cid = run_cli(root, "create", "-e", "DB_PASSWORD=x", "-v", "research:/data", "busybox", "true").stdout.decode().strip()
    run_cli(root, "start", "-a", cid)
    config = root / "containers" / cid / "config.json"
    for path, loose in ((root / "state.db", 0o644), (config, 0o644), (root / "volumes" / "research", 0o755)):
        os.chmod(path, loose)

    report = run_cli(root, "system", "check", "--dry-run", check=False)
    text = report.stdout.decode()
    assert report.returncode == 1, text
    for path in (root / "state.db", config, root / "volumes" / "research"):
        assert f"{path} is mode" in text, text
    assert mode(config) == 0o644, "--dry-run only reports"
    run_cli(root, "system", "check")
    assert (mode(root / "state.db"), mode(config), mode(root / "volumes" / "research")) == (0o600, 0o600, 0o700)

    # a root opened by an older Dockerbank (or a careless chmod) is closed by the next command
    os.chmod(root, 0o755)
    os.chmod(root / "state.db", 0o644)
    run_cli(root, "ps")
    assert mode(root) == 0o700 and mode(root / "state.db") == 0o600
