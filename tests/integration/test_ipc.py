"""``--ipc shareable`` / ``--ipc container:X`` on the real stack, as docker 20.10 does them: the
joiner is in the owner's IPC namespace (System V shared memory seen by both) and binds the owner's
host tmpfs at /dev/shm (files seen by both; the owner's --shm-size); a private or stopped owner is
refused with docker's words and codes; the tmpfs goes at the owner's stop and with its removal,
and ``system check`` takes one a crash left."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

JOINER = ("for i in $(seq 100); do [ -e /dev/shm/owner ] && break; sleep 0.05; done; cat /dev/shm/owner; "
          "echo from-joiner > /dev/shm/joiner; df -k /dev/shm | tail -1; readlink /proc/self/ns/ipc; "
          "cat /proc/sysvipc/shm")


def _shm_mounts(run_root: Path) -> list[str]:
    """The mount points of the shareable containers' /dev/shm tmpfs under ``run_root``."""
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if f" {run_root}/containers/" in line]


def test_a_joiner_shares_the_owners_ipc_namespace_and_dev_shm_which_go_with_it(ctr, root):
    from dockerbank.host.mounts import mount_tmpfs

    run_root = Path(str(root) + "-run")
    owner = ctr("run", "-d", "--name", "owner", "--ipc", "shareable", "--shm-size", "16m", "--network", "none",
                "busybox", "sh", "-c", "echo from-owner > /dev/shm/owner; trap 'exit 0' TERM; sleep 600 & wait"
                ).stdout.decode().strip()
    pid = int(ctr("inspect", "-f", "{{.State.Pid}}", "owner").stdout)
    # a System V shared memory segment (key 0x1234) made in the owner's namespace: busybox has no ipcmk
    subprocess.run(["nsenter", f"--ipc=/proc/{pid}/ns/ipc", sys.executable, "-c",
                    "import ctypes; assert ctypes.CDLL(None).shmget(0x1234, 4096, 0o1666) >= 0"], check=True)
    ctr("create", "--name", "joiner", "--ipc", "container:owner", "--shm-size", "8m", "--network", "none",
        "busybox", "sh", "-c", JOINER)
    out = ctr("start", "-a", "joiner").stdout.decode().splitlines()
    assert out[0] == "from-owner" and out[1].split()[1] == "16384"  # the owner's 16 MiB, not the joiner's 8
    assert out[2] == ctr("exec", "owner", "readlink", "/proc/self/ns/ipc").stdout.decode().strip()
    assert any(line.split()[0] == str(0x1234) for line in out[4:])
    assert ctr("exec", "owner", "cat", "/dev/shm/joiner").stdout == b"from-joiner\n"
    shown = ctr("inspect", "-f", "{{.HostConfig.IpcMode}} {{.HostConfig.ShmSize}}", "owner", "joiner").stdout
    assert shown.decode().splitlines() == ["shareable 16777216", f"container:{owner} 8388608"]
    assert _shm_mounts(run_root) == [f"{run_root}/containers/{owner}/shm"]

    # a private container: its own namespace and /dev/shm, and not joinable (docker's words and codes)
    private = ctr("run", "-d", "--name", "private", "--network", "none", "busybox", "sleep", "600"
                  ).stdout.decode().strip()
    assert str(0x1234) not in ctr("exec", "private", "cat", "/proc/sysvipc/shm").stdout.decode()
    assert ctr("exec", "private", "ls", "-A", "/dev/shm").stdout == b""
    refused = ctr("run", "--rm", "--ipc", "container:private", "busybox", "true", check=False)
    assert refused.returncode == 125 and refused.stderr.decode().splitlines() == [
        f"Error: can't join IPC of container {private}: non-shareable IPC (hint: use IpcMode:shareable for the "
        "donor container)"]
    ctr("rm", "-f", "private")

    # the owner's stop unmounts its tmpfs (as docker's); joining a stopped owner fails at the start (1)
    ctr("stop", "-t", "0", "owner")
    assert _shm_mounts(run_root) == []
    refused = ctr("start", "joiner", check=False)
    assert refused.returncode == 1 and f"container {owner} is not running" in refused.stderr.decode()
    ctr("rm", "owner", "joiner")
    assert not (run_root / "containers" / owner).exists()
    ctr("run", "--rm", "--ipc", "shareable", "--network", "none", "busybox", "true")
    assert _shm_mounts(run_root) == [] and list((run_root / "containers").iterdir()) == []

    # a tmpfs a crash left behind its removed container: system check takes it
    leftover = run_root / "containers" / ("ab" * 32) / "shm"
    leftover.mkdir(parents=True)
    mount_tmpfs(leftover, "size=1m")
    assert f"container: /dev/shm of removed container {'ab' * 6}: unmounted and removed" in \
        ctr("system", "check").stdout.decode()
    assert _shm_mounts(run_root) == [] and not leftover.parent.exists()
