"""The warm helper for real: the same commands with and without it, the helper killed in the
middle of commands, stale and hung sockets, signals and exit statuses, roots kept apart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from dockerbank.warm import client, wire
from tests.conftest import run_cli
from tests.integration.test_rootless import PYTHON, user  # noqa: F401  (an ordinary user of the host)

pytestmark = pytest.mark.integration

WARM = {"DOCKERBANK_WARM": "force"}
COLD = {"DOCKERBANK_WARM": "0"}


def _helper() -> tuple[int, int] | None:
    """(pid, commands served) of the helper serving this test's identity (the CLI subprocesses
    share it: same interpreter, user, cgroup, namespaces and PYTHON* environment)."""
    return client.status()


def _kill_helper() -> None:
    found = _helper()
    if found is None:
        return
    os.kill(found[0], signal.SIGKILL)
    deadline = time.time() + 10
    while os.path.exists(f"/proc/{found[0]}") and _zombie_or_alive(found[0]):
        assert time.time() < deadline, "the helper did not die"
        time.sleep(0.02)


def _zombie_or_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[1].split()[0] != "Z"
    except OSError:
        return False


def _popen(root, *args: str, env: dict, **kwargs) -> subprocess.Popen:
    full = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run", **env)
    return subprocess.Popen([sys.executable, "-m", "dockerbank", *args], env=full, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **kwargs)


def _wait_for(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_commands_behave_the_same_with_and_without_the_helper(ctr, root, tmp_path):
    env_file = tmp_path / "work" / "vars.env"
    env_file.parent.mkdir()
    env_file.write_text("FROM_FILE=yes\n")
    cases = [
        (("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"), None, {}),
        (("run", "--rm", "-i", "busybox", "cat"), b"piped input\n", {}),
        # a relative path and -e VAR from the caller's directory and environment, not the helper's
        (("run", "--rm", "--env-file", "vars.env", "-e", "CALLER", "busybox", "sh", "-c", "echo $FROM_FILE $CALLER"),
         None, {"CALLER": "set-by-caller"}),
        (("rm", "no-such-container"), None, {}),
        (("ps", "-a", "--format", "{{.Names}}"), None, {}),
        (("volume", "ls", "-q"), None, {}),          # a click command
        (("run", "--no-such-flag", "busybox"), None, {}),  # click words the usage error
        (("container", "inspect", "--format", "{{.Name}}", "nothing"), None, {}),
    ]
    for args, stdin, extra in cases:
        cold = run_cli(root, *args, input=stdin, check=False, env={**COLD, **extra}, cwd=env_file.parent)
        before = _helper()
        warm = run_cli(root, *args, input=stdin, check=False, env={**WARM, **extra}, cwd=env_file.parent)
        after = _helper()
        assert after is not None and (before is None or after[1] > before[1] or after[0] != before[0]), \
            f"{args} did not go through the helper"
        assert (warm.returncode, warm.stdout, warm.stderr) == (cold.returncode, cold.stdout, cold.stderr), args
    assert run_cli(root, "run", "--rm", "busybox", "sh", "-c", "echo out; exit 3", check=False,
                   env=WARM).returncode == 3


def test_killing_the_helper_mid_command_loses_nothing(ctr, root):
    ctr("run", "-d", "--name", "kept", "busybox", "sleep", "300", env=WARM)
    running = _popen(root, "run", "--rm", "--name", "midway", "busybox", "sh", "-c",
                     "sleep 2; echo finished; exit 5", env=WARM)
    _wait_for(lambda: b"midway" in run_cli(root, "ps", "--format", "{{.Names}}", env=COLD).stdout,
              "the container started through the helper")
    old = _helper()
    _kill_helper()
    out, err = running.communicate(timeout=60)
    assert (running.returncode, out) == (5, b"finished\n"), err
    # the --rm container went; the detached one still runs and answers
    _wait_for(lambda: b"midway" not in run_cli(root, "ps", "-a", "--format", "{{.Names}}", env=COLD).stdout,
              "the --rm container's removal")
    assert run_cli(root, "ps", "--format", "{{.Names}} {{.State}}", env=COLD).stdout == b"kept running\n"
    assert ctr("exec", "kept", "echo", "alive", env=WARM).stdout == b"alive\n"
    assert _helper()[0] != old[0]  # a new helper serves the next commands


def test_killing_the_helper_between_ready_and_command(ctr, root):
    """Whatever moment the helper dies at, the command runs exactly once."""
    for _ in range(5):
        proc = _popen(root, "run", "--rm", "busybox", "sh", "-c", "echo once", env=WARM)
        _kill_helper()
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0 and out == b"once\n"
    assert run_cli(root, "ps", "-aq", env=COLD).stdout == b""


def test_stale_socket_and_hung_helper_fall_back(ctr, root):
    _kill_helper()
    path = client.socket_path()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    os.unlink(path) if os.path.exists(path) else None
    stale.bind(path)
    stale.close()  # a socket file nobody listens on: what a killed helper leaves
    result = run_cli(root, "ps", "-a", "--format", "{{.Names}}", env={"DOCKERBANK_WARM": "1"})
    assert result.returncode == 0
    _wait_for(lambda: _helper() is not None, "a fresh helper in place of the stale socket")
    _kill_helper()

    hung = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # listens, never answers (a stopped helper)
    os.unlink(path) if os.path.exists(path) else None
    hung.bind(path)
    hung.listen(8)
    try:
        started = time.monotonic()
        result = run_cli(root, "run", "--rm", "busybox", "echo", "fell back", env={"DOCKERBANK_WARM": "1"})
        assert result.stdout == b"fell back\n"
        assert time.monotonic() - started < client.HANDSHAKE_TIMEOUT + 30
    finally:
        hung.close()
        os.unlink(path)


def test_a_helper_that_refuses_sends_the_command_back(ctr, root):
    """A helper of another version or identity answers S: the command runs in-process, once."""
    _kill_helper()
    path = client.socket_path()
    os.unlink(path) if os.path.exists(path) else None
    fake = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    fake.bind(path)
    fake.listen(8)
    proc = _popen(root, "run", "--rm", "busybox", "echo", "in-process", env={"DOCKERBANK_WARM": "1"})
    try:
        conn, _ = fake.accept()
        conn.recv(65536)
        conn.sendall(b"S identity\n")
        conn.close()
        out, err = proc.communicate(timeout=60)
        assert (proc.returncode, out) == (0, b"in-process\n"), err
    finally:
        fake.close()
        os.unlink(path)


def test_signals_and_deaths_as_in_process(ctr, root):
    script = 'trap "echo got TERM; exit 7" TERM; echo ready; sleep 60 & wait'
    for env in (COLD, WARM):
        proc = _popen(root, "run", "--rm", "busybox", "sh", "-c", script, env=env)
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert (proc.returncode, out) == (7, b"got TERM\n"), (env, err)
    # a command killed by a signal (the crash tests' fault plan): its client dies of the same one
    for env in (COLD, WARM):
        killed = run_cli(root, "create", "busybox", "true", check=False,
                         env={**env, "DOCKERBANK_FAULT": "db.committed:1"})
        assert killed.returncode == -signal.SIGKILL, (env, killed.stderr)


def test_roots_stay_apart_through_one_helper(ctr, root, tmp_path):
    other = tmp_path / "other-root"
    other.mkdir()
    ctr("run", "-d", "--name", "in-first", "busybox", "sleep", "300", env=WARM)
    pid = _helper()[0]
    assert run_cli(other, "ps", "-a", "-q", env=WARM).stdout == b""
    assert _helper()[0] == pid
    assert run_cli(root, "ps", "--format", "{{.Names}}", env=WARM).stdout == b"in-first\n"


def test_another_identity_gets_another_helper_or_none(ctr, root):
    _kill_helper()
    ctr("ps", env=WARM)
    mine = _helper()
    # an interpreter-relevant variable makes another identity: never served by this helper
    different = run_cli(root, "ps", "-a", "-q", env={**WARM, "PYTHONWARMTEST": "1"})
    assert different.returncode == 0
    assert _helper()[0] == mine[0]  # (its count may move: a container's exit command is served too)
    env = dict(os.environ, PYTHONWARMTEST="1")
    other_identity = subprocess.run([sys.executable, "-c", "from dockerbank.warm.client import status; print(status())"],
                                    env=env, capture_output=True, text=True).stdout.strip()
    assert other_identity != "None" and str(mine[0]) not in other_identity
    found = eval(other_identity)  # noqa: S307  (our own print of a tuple)
    os.kill(found[0], signal.SIGKILL)


def test_helper_memory_is_stated_and_small(ctr):
    ctr("ps", env=WARM)
    pid = _helper()[0]
    with open(f"/proc/{pid}/status") as handle:
        rss_kib = int(next(line for line in handle if line.startswith("VmRSS:")).split()[1])
    assert rss_kib < 48 * 1024, f"helper RSS {rss_kib} KiB"
    assert wire.socket_dir() is not None


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


def test_a_client_killed_mid_command_takes_its_command_along(ctr, root):
    """As a CLI killed with SIGKILL stops where it is, so does the command it handed over."""
    ctr("ps", env=WARM)
    helper = _helper()[0]
    proc = _popen(root, "run", "--rm", "--name", "orphan", "busybox", "sleep", "30", env=WARM)
    _wait_for(lambda: b"orphan" in run_cli(root, "ps", "--format", "{{.Names}}", env=COLD).stdout,
              "the container started through the helper")
    assert _children(helper), "the command runs in a process of the helper"
    proc.kill()
    proc.wait()
    _wait_for(lambda: not _children(helper), "the command process's end after its client's", timeout=10)
    # the container itself lives on, as after a killed in-process CLI; rm -f ends it
    assert run_cli(root, "ps", "--format", "{{.Names}}", env=COLD).stdout == b"orphan\n"
    ctr("rm", "-f", "orphan", env=WARM)


def test_an_ordinary_user_gets_a_helper_of_its_own(user):  # noqa: F811
    """Rootless: the user's helper (its socket in the user's runtime directory) serves its commands,
    which join the user's namespaces in the command process as the CLI does."""
    env = user.env(DOCKERBANK_WARM="force")
    for _ in range(2):
        assert user.db("ps", "-a", env=env).stdout.startswith(b"CONTAINER ID")
    asked = subprocess.run([PYTHON, "-c", "from dockerbank.warm.client import status; print(status())"],
                           user=user.uid, group=user.gid, extra_groups=[], cwd=user.home, env=user.env(),
                           capture_output=True, text=True)
    found = asked.stdout.strip()
    assert found.startswith("("), asked.stderr
    pid, served = (int(x) for x in found.strip("()").split(","))
    assert served >= 1 and os.stat(f"/proc/{pid}").st_uid == user.uid
    assert (_helper() or (0, 0))[0] != pid


def test_many_commands_at_once_through_one_helper(ctr, root):
    """Concurrent commands: every one runs once, with its own output and exit code (the helper
    handles many endings and connections in one wake-up)."""
    ctr("ps", env=WARM)
    procs = [_popen(root, "run", "--rm", "--network", "none", "busybox", "sh", "-c", f"echo {n}; exit {n % 4}",
                    env=WARM) for n in range(12)]
    for n, proc in enumerate(procs):
        out, err = proc.communicate(timeout=120)
        assert (proc.returncode, out) == (n % 4, f"{n}\n".encode()), err
    assert run_cli(root, "ps", "-aq", env=COLD).stdout == b""
