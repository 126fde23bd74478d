"""The CLI as users run it: run/ps/inspect output shapes, an interactive tty through a real pty."""

from __future__ import annotations

import json
import os
import pty
import select
import sys
import time

import pytest

from tests.conftest import require_binary


def test_run_rm_echo(ctr):
    result = ctr("run", "--rm", "busybox", "echo", "hi")
    assert result.stdout == b"hi\n" and result.returncode == 0


def test_ps_columns_formats_and_filters(ctr):
    ctr("run", "-d", "--name", "alpha", "--label", "team=a", "busybox", "sleep", "30")
    ctr("create", "--name", "beta", "busybox", "true")
    lines = ctr("ps").stdout.decode().splitlines()
    assert lines[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert len(lines) == 2 and '"sleep 30"' in lines[1] and "Up " in lines[1] and lines[1].endswith("alpha")
    all_rows = ctr("ps", "-a").stdout.decode()
    assert "Created" in all_rows and "beta" in all_rows
    assert ctr("ps", "-a", "--format", "{{.Names}} {{.State}}", "--filter", "label=team=a").stdout == b"alpha running\n"
    assert ctr("ps", "-a", "--filter", "status=created", "--format", "{{.Names}}").stdout == b"beta\n"
    assert ctr("ps", "-a", "--filter", "ancestor=busybox", "-q").stdout.decode().count("\n") == 2
    assert ctr("ps", "-l", "--format", "{{.Names}}").stdout == b"beta\n"
    full = ctr("ps", "-q", "--no-trunc").stdout.decode().strip()
    assert len(full) == 64
    assert "SIZE" in ctr("ps", "-s").stdout.decode().splitlines()[0]
    ctr("container", "ls", "-a", "-q")


def test_inspect_shape(ctr):
    ctr("create", "--name", "shape", "-e", "X=1", "-m", "64m", "--cpus", "0.5", "--pids-limit", "20",
        "busybox", "sh", "-c", "true")
    info = json.loads(ctr("inspect", "shape").stdout)[0]
    for key in ("Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath", "HostnamePath", "HostsPath",
                "LogPath", "Name", "RestartCount", "Driver", "Platform", "MountLabel", "ProcessLabel",
                "AppArmorProfile", "HostConfig", "GraphDriver", "Mounts", "Config", "NetworkSettings"):
        assert key in info, key
    assert set(info["State"]) >= {"Status", "Running", "Paused", "Restarting", "OOMKilled", "Dead", "Pid",
                                  "ExitCode", "Error", "StartedAt", "FinishedAt"}
    assert info["Path"] == "sh" and info["Args"] == ["-c", "true"]
    assert info["State"]["Status"] == "created"
    assert info["HostConfig"]["Memory"] == 64 << 20 and info["HostConfig"]["NanoCpus"] == 500_000_000
    assert "X=1" in info["Config"]["Env"]
    assert ctr("container", "inspect", "-f", "{{.Name}}", "shape").stdout == b"/shape\n"
    missing = ctr("inspect", "nosuchthing", check=False)
    assert missing.returncode == 1 and "No such" in missing.stderr.decode()


def test_start_attach_and_prune(ctr):
    ctr("create", "--name", "later", "busybox", "sh", "-c", "echo attached; exit 4")
    result = ctr("start", "-a", "later", check=False)
    assert result.returncode == 4 and result.stdout == b"attached\n"
    pruned = ctr("container", "prune", "-f").stdout.decode()
    assert "Deleted Containers:" in pruned
    assert ctr("ps", "-aq").stdout == b""


@pytest.mark.parametrize("warm", ["0", "force"])  # in-process, and through the warm helper (fds passed)
def test_interactive_tty_through_a_pty(ctr, root, warm):
    env = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run", DOCKERBANK_WARM=warm)
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(sys.executable, [sys.executable, "-m", "dockerbank", "run", "-it", "--rm", "busybox", "sh"], env)
    output = b""

    def read_for(seconds: float, until: bytes | None = None) -> None:
        nonlocal output
        end = time.time() + seconds
        while time.time() < end:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    output += os.read(fd, 4096)
                except OSError:
                    return
            if until and until in output:
                return

    read_for(20, b"# ")
    os.write(fd, b"echo pid=$$; tty\r")
    read_for(10, b"/dev/pts/")
    os.write(fd, b"exit 5\r")
    read_for(10)
    _, status = os.waitpid(pid, 0)
    text = output.decode(errors="replace")
    assert "pid=1" in text and "/dev/pts/0" in text
    assert os.WEXITSTATUS(status) == 5
    os.close(fd)  # the terminal hangs up, as when a user closes it: the detached teardown must live on
    deadline = time.time() + 20
    while str(root / "containers") in open("/proc/self/mounts").read():
        assert time.time() < deadline, "the --rm container's overlay stayed mounted after the terminal closed"
        time.sleep(0.05)


def test_attach_start_i_detached_rm_and_log_windows(ctr):
    # attach must begin before the echo: 3 s leaves room for a loaded CI host
    ctr("run", "-d", "--name", "late", "busybox", "sh", "-c", "sleep 3; echo late; exit 6")
    result = ctr("attach", "late", check=False)
    assert result.stdout == b"late\n" and result.returncode == 6
    ctr("create", "-i", "--name", "reader", "busybox", "sh", "-c", "read x; echo read:$x")
    assert ctr("start", "-i", "reader", input=b"abc\n").stdout == b"read:abc\n"
    ctr("run", "-d", "--rm", "--name", "gone", "busybox", "true")
    deadline = time.time() + 15
    while b"gone" in ctr("ps", "-a", "--format", "{{.Names}}").stdout and time.time() < deadline:
        time.sleep(0.2)
    assert b"gone" not in ctr("ps", "-a", "--format", "{{.Names}}").stdout
    assert ctr("logs", "--since", "1h", "reader").stdout == b"read:abc\n"
    assert ctr("logs", "--until", "2000-01-01T00:00:00Z", "reader").stdout == b""
    assert ctr("logs", "--tail", "0", "reader").stdout == b""
    assert ctr("logs", "-t", "reader").stdout.decode().split(" ", 1)[1] == "read:abc\n"


def test_runc_works_as_the_fallback_runtime(ctr, tmp_path):
    require_binary("runc")
    runc_root = tmp_path / "runc-run"  # its own run root: runtime state is per runtime
    env = {"DOCKERBANK_RUNTIME": "runc", "DOCKERBANK_RUNROOT": str(runc_root)}
    result = ctr("run", "--rm", "--network", "none", "busybox", "sh", "-c", "echo $$; exit 3", check=False, env=env)
    assert result.stdout == b"1\n" and result.returncode == 3
    assert '"name": "runc"' in (runc_root / "runtime.json").read_text()


def test_cli_as_docker_users_type_it(ctr):
    # --flag=true|false for boolean flags, on the fast path and through click
    assert ctr("run", "--rm=true", "--init=false", "--network", "none", "busybox", "echo", "x").stdout == b"x\n"
    assert ctr("ps", "--all=true", "--quiet=true").returncode == 0
    assert ctr("volume", "ls", "--quiet=false").stdout.startswith(b"DRIVER")
    bad = ctr("ps", "--all=maybe", check=False)
    assert bad.returncode == 125 and b"--all" in bad.stderr
    # -it from a pipe is refused as docker refuses it, before anything is created
    refused = ctr("run", "--rm", "-it", "--name", "never", "busybox", "true", input=b"", check=False)
    assert (refused.returncode, refused.stderr) == (1, b"Error: the input device is not a TTY\n")
    assert b"never" not in ctr("ps", "-a", "--format", "{{.Names}}").stdout
    # no message speaks of a daemon; a missing image offline says where images come from
    gone = ctr("rm", "no-such-container", check=False)
    assert gone.returncode == 1 and b"daemon" not in gone.stderr and b"No such container" in gone.stderr
    missing = ctr("run", "--rm", "registry.invalid/nothing:1", "true", check=False)
    assert missing.returncode == 125 and b"base-image" in missing.stderr and b"load" in missing.stderr
