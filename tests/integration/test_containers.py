"""Real containers (crun/runc + conmon + overlayfs) through the CLI: isolation, limits,
exit codes, volumes, stop with a trap, logs -f, pause, inspect."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def out(result) -> str:
    return result.stdout.decode()


def test_run_echo_and_own_exit_code(ctr):
    assert out(ctr("run", "--rm", "busybox", "echo", "hi")) == "hi\n"
    result = ctr("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert result.returncode == 3
    assert out(result) == "out\n" and result.stderr.decode() == "err\n"
    assert out(ctr("ps", "-aq")) == ""


def test_isolation_pid1_hostname_mounts_and_host_files(ctr, tmp_path):
    secret = tmp_path / "host-secret"
    secret.write_text("x")
    text = out(ctr("run", "--rm", "--network", "none", "--hostname", "box1", "busybox", "sh", "-c",
                   f"cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname; cat /proc/self/mountinfo | head -1; "
                   f"test -e {secret} && echo visible || echo hidden; ls /sys/fs/cgroup >/dev/null; "
                   "ip link 2>/dev/null | grep -c ': ' || cat /proc/net/dev | tail -n +3 | wc -l"))
    lines = text.splitlines()
    assert lines[0].startswith("sh -c")
    assert lines[1] == "box1"
    assert " / / " in lines[2] and "overlay" in lines[2]
    assert lines[3] == "hidden"
    assert lines[4].strip() == "1"  # network namespace with loopback only


def test_exit_codes_126_127_and_name_conflict(ctr):
    result = ctr("run", "--rm", "busybox", "nosuch", check=False)
    assert result.returncode == 127
    assert 'exec: "nosuch": executable file not found in $PATH' in result.stderr.decode()
    assert ctr("run", "--rm", "busybox", "/etc/passwd", check=False).returncode == 126
    ctr("create", "--name", "taken", "busybox", "true")
    result = ctr("run", "--name", "taken", "busybox", "true", check=False)
    assert result.returncode == 125
    cid = out(ctr("inspect", "-f", "{{.Id}}", "taken")).strip()
    assert result.stderr.decode().strip() == (
        f'Error: Conflict. The container name "/taken" is already in use by container "{cid}". '
        "You have to remove (or rename) that container to be able to reuse that name.")
    assert ctr("run", "--rm", "nosuchimage", check=False).returncode == 125


def test_memory_limit_oom_is_137_and_oomkilled(ctr):
    result = ctr("run", "--name", "hog", "-m", "8m", "busybox", "sh", "-c",
                 "x=a; while true; do x=$x$x$x$x; done", check=False)
    assert result.returncode == 137
    state = json.loads(out(ctr("inspect", "hog")))[0]["State"]
    assert state["OOMKilled"] is True and state["ExitCode"] == 137 and state["Status"] == "exited"


def test_named_volume_survives_rm_and_new_run(ctr):
    ctr("run", "--name", "writer", "-v", "keep:/data", "busybox", "sh", "-c", "echo kept > /data/f")
    ctr("rm", "-v", "writer")
    assert out(ctr("run", "--rm", "-v", "keep:/data", "busybox", "cat", "/data/f")) == "kept\n"


def test_detached_stop_runs_trap_then_logs_and_inspect(ctr):
    cid = out(ctr("run", "-d", "--name", "trapper", "busybox", "sh", "-c",
                  'trap "echo got TERM; exit 7" TERM; echo started; while true; do sleep 0.1; done')).strip()
    assert len(cid) == 64
    deadline = time.time() + 10
    while "started" not in out(ctr("logs", "trapper")) and time.time() < deadline:
        time.sleep(0.1)
    ps = out(ctr("ps"))
    assert "trapper" in ps and "Up " in ps
    info = json.loads(out(ctr("inspect", "trapper")))[0]
    assert info["State"]["Running"] is True and info["State"]["Pid"] > 0
    assert info["Name"] == "/trapper" and info["Driver"] == "overlay2"
    assert info["HostConfig"]["NetworkMode"] == "default"
    ctr("stop", "-t", "5", "trapper")
    assert out(ctr("logs", "trapper")) == "started\ngot TERM\n"
    assert out(ctr("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "trapper")) == "exited 7\n"
    assert "Exited (7)" in out(ctr("ps", "-a", "--filter", "name=trapper"))
    assert out(ctr("wait", "trapper")) == "7\n"


def test_stop_timeout_kills_with_sigkill(ctr):
    ctr("run", "-d", "--name", "stubborn", "busybox", "sh", "-c", "trap '' TERM; while true; do sleep 0.1; done")
    time.sleep(0.3)
    started = time.time()
    ctr("stop", "-t", "1", "stubborn")
    assert time.time() - started < 8
    assert out(ctr("inspect", "-f", "{{.State.ExitCode}}", "stubborn")) == "137\n"


def test_logs_follow_and_exit_seen_by_next_call(ctr, root):
    ctr("run", "-d", "--name", "ticker", "busybox", "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.3; done")
    env = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run")
    result = subprocess.run([sys.executable, "-m", "dockerbank", "logs", "-f", "ticker"], check=False,
                            capture_output=True,
                            timeout=30, env=env)
    assert result.stdout == b"1\n2\n3\n"
    assert out(ctr("inspect", "-f", "{{.State.Status}}", "ticker")) == "exited\n"
    assert out(ctr("ps", "-q")) == ""


def test_pause_unpause_kill_restart_rename(ctr):
    ctr("run", "-d", "--name", "p1", "busybox", "sleep", "60")
    ctr("pause", "p1")
    assert out(ctr("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "p1")) == "paused true\n"
    assert "(Paused)" in out(ctr("ps"))
    ctr("unpause", "p1")
    ctr("rename", "p1", "p2")
    ctr("kill", "-s", "KILL", "p2")
    assert out(ctr("wait", "p2")) == "137\n"
    ctr("restart", "p2")
    assert out(ctr("inspect", "-f", "{{.State.Running}} {{.RestartCount}}", "p2")) == "true 0\n"
    result = ctr("rm", "p2", check=False)
    assert result.returncode == 1 and "cannot remove a running container" in result.stderr.decode()
    ctr("rm", "-f", "p2")
    assert out(ctr("ps", "-aq")) == ""


def test_run_flags_env_user_workdir_readonly_caps(ctr, tmp_path):
    envfile = tmp_path / "env"
    envfile.write_text("# comment\nFROM_FILE=1\n")
    text = out(ctr("run", "--rm", "-e", "A=b", "--env-file", str(envfile), "-w", "/work/dir", "-u", "nobody",
                   "--read-only", "--tmpfs", "/tmp", "--label", "x=y", "--cap-drop", "ALL", "busybox", "sh", "-c",
                   "echo $A $FROM_FILE; pwd; id -u; touch /f 2>/dev/null || echo ro; touch /tmp/ok && echo tmp; "
                   "grep CapEff /proc/self/status"))
    lines = text.splitlines()
    assert lines[:5] == ["b 1", "/work/dir", "65534", "ro", "tmp"]
    assert lines[5].split()[1] == "0000000000000000"


def test_bind_mount_and_entrypoint_and_init(ctr, tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "in.txt").write_text("from host")
    text = out(ctr("run", "--rm", "-v", f"{tmp_path / 'shared'}:/mnt:ro", "--entrypoint", "cat", "busybox",
                   "/mnt/in.txt"))
    assert text == "from host"
    assert ctr("run", "--rm", "-v", f"{tmp_path / 'shared'}:/mnt:ro", "busybox", "touch", "/mnt/x",
               check=False).returncode != 0
    assert out(ctr("run", "--rm", "--init", "busybox", "cat", "/proc/1/cmdline")).startswith("/dev/init")


def test_interactive_stdin(ctr):
    assert out(ctr("run", "-i", "--rm", "busybox", "sh", "-c", "read x; echo got $x", input=b"hello\n")) == "got hello\n"


def test_restart_policy_on_failure_without_a_daemon(ctr):
    ctr("run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 3")
    deadline = time.time() + 30
    info = ""
    while time.time() < deadline:
        info = out(ctr("inspect", "-f", "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}", "flaky"))
        if info == "2 exited 3\n":
            break
        time.sleep(0.3)
    assert info == "2 exited 3\n"
    assert ctr("run", "--rm", "--restart", "always", "busybox", "true", check=False).returncode == 125


def test_next_call_sees_true_state_and_check_repairs_a_lost_monitor(ctr, root):
    from dockerbank.config import Config
    from dockerbank.engine import Engine

    ctr("run", "-d", "--name", "victim", "busybox", "sleep", "60")
    pid = int(out(ctr("inspect", "-f", "{{.State.Pid}}", "victim")))
    os.kill(pid, 9)  # killed behind the engine's back
    deadline = time.time() + 10
    while "Exited (137)" not in out(ctr("ps", "-a")) and time.time() < deadline:
        time.sleep(0.1)
    assert "Exited (137)" in out(ctr("ps", "-a"))
    ctr("run", "-d", "--name", "orphan", "busybox", "sleep", "60")
    engine = Engine(Config(root=root, run_root=type(root)(str(root) + "-run")))
    try:
        container = engine.containers.store.find("orphan")
        os.kill(container.state.conmon_pid, 9)  # the monitor dies; nobody writes an exit file
        deadline = time.time() + 20  # until init has reaped it, the monitor still looks alive
        findings = engine.containers.check(repair=True)
        while not any("monitor is gone" in line for line in findings):
            assert time.time() < deadline, findings
            time.sleep(0.05)
            findings = engine.containers.check(repair=True)
        assert engine.containers.store.find("orphan").state.status == "exited"
        assert engine.containers.check(repair=False) == []
    finally:
        engine.close()


def test_cgroup_limits_applied_and_privileged_starts(ctr):
    text = out(ctr("run", "--rm", "--network", "none", "--pids-limit", "5", "--cpus", "0.5", "-m", "64m",
                   "--blkio-weight", "300", "busybox", "sh", "-c",
                   "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes "
                   "/sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/pids.max "
                   "/sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max"))
    assert text.split()[:2] == ["5", str(64 << 20)] and "50000" in text
    assert "CapEff" in out(ctr("run", "--rm", "--network", "none", "--privileged", "busybox", "grep", "CapEff",
                               "/proc/self/status"))


def test_seccomp_filter_enforced_and_compiled_once_per_profile(ctr, root):
    """Docker's default profile refuses unshare(CLONE_NEWUSER); the first start has crun compile
    it, later ones load the cached program (run.oci.seccomp_bpf_data) and refuse it just the same."""
    probe = "grep Seccomp: /proc/self/status; unshare -U true 2>/dev/null; echo unshare=$?"
    first = ctr("run", "--name", "first", "--network", "none", "busybox", "sh", "-c", probe).stdout.decode()
    assert "Seccomp:\t2" in first and "unshare=1" in first
    cached = [p for p in (Path(str(root) + "-run") / "seccomp").iterdir() if p.suffix != ".key"]
    assert len(cached) == 1
    second = ctr("run", "--name", "second", "--network", "none", "busybox", "sh", "-c", probe).stdout.decode()
    assert "Seccomp:\t2" in second and "unshare=1" in second
    cid = ctr("inspect", "-f", "{{.Id}}", "second").stdout.decode().strip()
    spec = json.loads((root / "containers" / cid / "config.json").read_text())
    assert base64.b64decode(spec["annotations"]["run.oci.seccomp_bpf_data"]) == cached[0].read_bytes()
    off = ctr("run", "--rm", "--network", "none", "--security-opt", "seccomp=unconfined", "busybox", "sh", "-c",
              probe).stdout.decode()
    assert "Seccomp:\t0" in off and "unshare=0" in off


def _stored(root: Path, cid: str) -> dict | None:
    """The container's row as stored, read without the CLI (whose every call reconciles)."""
    import sqlite3

    with sqlite3.connect(root / "state.db") as conn:
        row = conn.execute("SELECT state FROM containers WHERE id = ?", (cid,)).fetchone()
    return json.loads(row[0]) if row else None


def _mounted(path: str) -> bool:
    return any(line.split()[4].startswith(path) for line in Path("/proc/self/mountinfo").read_text().splitlines())


def test_conmons_exit_command_finishes_detached_containers_without_any_cli_call(ctr, root):
    """Nobody reads between the exit and the checks: conmon's exit command alone records the exit,
    unmounts in the host's namespace, removes a --rm container and applies the restart policy."""
    plain = out(ctr("run", "-d", "--network", "none", "busybox", "sh", "-c", "exit 4")).strip()
    gone = out(ctr("run", "-d", "--rm", "busybox", "true")).strip()
    flaky = out(ctr("run", "-d", "--restart", "on-failure:2", "--network", "none", "busybox", "sh", "-c",
                    "exit 3")).strip()
    deadline = time.time() + 30
    while time.time() < deadline:
        states = [_stored(root, cid) for cid in (plain, gone, flaky)]
        if (states[0] or {}).get("status") == "exited" and states[1] is None \
                and (states[2] or {}).get("restart_count") == 2 and states[2].get("status") == "exited":
            break
        time.sleep(0.2)
    plain_state, gone_state, flaky_state = (_stored(root, cid) for cid in (plain, gone, flaky))
    assert plain_state["status"] == "exited" and plain_state["exit_code"] == 4 and not plain_state["mounted"]
    assert gone_state is None
    assert flaky_state["restart_count"] == 2 and flaky_state["exit_code"] == 3
    deadline = time.time() + 10  # the --rm container's unmount runs in a detached child
    while _mounted(str(root / "containers")) and time.time() < deadline:
        time.sleep(0.1)
    assert not _mounted(str(root / "containers"))
    assert not any((Path(str(root) + "-run") / "netns").iterdir())
