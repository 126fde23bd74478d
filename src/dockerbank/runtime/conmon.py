"""conmon: the small monitor that keeps a container's stdio, log and exit code while no CLI runs.

One conmon per container (and one per ``exec``). conmon runs ``<runtime> create`` (or
``exec``), reports the container's pid on the ``_OCI_SYNCPIPE`` pipe, writes the output to a
k8s-file log, serves an attach socket (``<bundle>/attach``, SOCK_SEQPACKET, one stream byte
before each chunk: 2 stdout, 3 stderr), and at exit writes ``<exit-dir>/<id>`` and
``<persist-dir>/exit`` (plus ``<persist-dir>/oom`` after an OOM kill on cgroup v1).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from dockerbank.errors import RuntimeFailure

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:  # spawn's callers hold a runtime already; ps and reconcile need none of it
    import socket
    from collections.abc import AsyncIterator

    from dockerbank.runtime.oci import OciRuntime

STDIN, STDOUT, STDERR = 1, 2, 3
BUF_SIZE = 8192 + 1


@dataclass
class Started:
    pid: int          # the container's init (or the exec'd process) in the host's pid namespace
    conmon_pid: int
    sock: socket.socket | None = None   # the attach connection made before the exec ran


def conmon_path() -> str:
    path = shutil.which("conmon") or "/usr/bin/conmon"
    if not os.path.exists(path):
        raise RuntimeFailure("conmon is not installed: install Debian's conmon")
    return path


def _read_sync(fd: int, timeout: float = 60.0) -> dict:
    """One JSON line from conmon's sync pipe."""
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeFailure("conmon did not report the container's pid in time")
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    if not data.strip():
        raise RuntimeFailure("conmon exited without reporting the container (see its log with --log-level debug)")
    try:
        return json.loads(data.splitlines()[0])
    except ValueError as exc:
        raise RuntimeFailure(f"conmon sent an unreadable message: {data[:200]!r}") from exc


def spawn(runtime: OciRuntime, cid: str, bundle: Path, *, log_path: Path, terminal: bool, stdin: bool,
          command: str, exit_command: list[str] | None = None, exec_spec: Path | None = None,
          exec_id: str | None = None, attach_first: bool = False, log_args: list[str] | None = None) -> Started:
    """Start conmon for ``create`` (or ``exec`` with ``exec_spec``); return once the process exists.

    Files go to ``bundle``: ``pid``, ``conmon.pid``, ``exit`` (persist dir) and the attach socket.
    For an exec they go to ``bundle/exec/<exec_id>`` (conmon's bundle for the exec session).
    ``attach_first`` (exec only): connect to the attach socket before the process runs, so no
    output is lost; the connected socket is returned in ``Started.sock``. ``log_args``: conmon's
    log arguments (container.logconfig: a size limit, or no log) instead of the k8s-file at ``log_path``.
    """
    import subprocess

    work = bundle if exec_spec is None else bundle / "exec" / (exec_id or "x")
    work.mkdir(parents=True, exist_ok=True)
    # A conmon with an exit command stays in the host's mount namespace, where that command must
    # unmount and tear down; one without (an attached run) takes the faster road of the CLI's own
    # runtime calls (conmon itself behind the namespace prefix, the runtime called as is). An
    # exec's conmon needs neither: the runtime's exec joins the cgroups the create set up, which
    # crun 1.8 does from the host's mount namespace on hybrid hosts too (checked: the exec'd
    # process is in the container's cgroup of every hierarchy), so it runs without the prefix's
    # three execs (unshare, sh, umount: ~10 ms of every exec here).
    behind_prefix = not exit_command and exec_spec is None
    args = [
        *(runtime.prefix if behind_prefix else []),
        conmon_path(), "--api-version", "1", "-c", cid, "-u", exec_id or cid, "-n", cid,
        *runtime.conmon_args(private_ns_here=behind_prefix, sets_cgroups_up=exec_spec is None),
        "-b", str(work), "-p", str(work / "pid"), "-P", str(work / "conmon.pid"),
        "--exit-dir", str(work), "--persist-dir", str(work), "--full-attach", "--socket-dir-path", str(work),
        *(log_args or ["-l", f"k8s-file:{log_path}"]), "--log-level", "error", "--no-sync-log",
    ]
    if terminal:
        args.append("-t")
    if stdin:
        args.append("-i")
    if exec_spec is not None:
        args += ["-e", "--exec-process-spec", str(exec_spec)]
        if attach_first:
            args.append("--exec-attach")
    if exit_command:
        args += ["--exit-command", exit_command[0]]
        for arg in exit_command[1:]:
            args += ["--exit-command-arg", arg]
    read_fd, write_fd = os.pipe()
    env = dict(os.environ, _OCI_SYNCPIPE=str(write_fd))
    pass_fds = [write_fd]
    start_r = start_w = attach_r = attach_w = -1
    if attach_first:
        start_r, start_w = os.pipe()
        attach_r, attach_w = os.pipe()
        env.update(_OCI_STARTPIPE=str(start_r), _OCI_ATTACHPIPE=str(attach_w))
        pass_fds += [start_r, attach_w]
    try:
        proc = subprocess.Popen(args, env=env, pass_fds=pass_fds, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=str(work))
    except OSError as exc:
        for fd in (read_fd, write_fd, start_r, start_w, attach_r, attach_w):
            if fd >= 0:
                os.close(fd)
        raise RuntimeFailure(f"cannot start conmon: {exc}") from exc
    os.close(write_fd)
    sock = None
    try:
        if attach_first:
            os.close(start_r)
            os.close(attach_w)
            os.write(start_w, b"0")  # first read: conmon may go on and fork
        _, err = proc.communicate(timeout=30)
        if proc.returncode != 0:
            raise RuntimeFailure(f"conmon failed: {err.decode(errors='replace').strip()}")
        if attach_first:
            _read_sync(attach_r)                # the attach socket exists
            sock = connect_attach(work)
            os.write(start_w, b"1")             # now let the runtime exec the process
        message = _read_sync(read_fd)
    except BaseException:
        if sock is not None:
            sock.close()
        raise
    finally:
        os.close(read_fd)
        for fd in (start_w, attach_r):
            if fd >= 0:
                os.close(fd)
    pid = int(message.get("data", message.get("pid", -1)))
    if pid <= 0:
        if sock is not None:
            sock.close()
        from dockerbank.runtime.oci import classify_start_error

        raise classify_start_error(message.get("message", "unknown error"), command,
                                   "exec" if exec_spec is not None else "create")
    try:
        conmon_pid = int((work / "conmon.pid").read_text().strip())
    except (OSError, ValueError):
        conmon_pid = 0
    return Started(pid, conmon_pid, sock)


def guarded_exit_command(exit_command: list[str], lock: Path) -> list[str]:
    """``exit_command`` run only when no resident exit handler holds ``lock`` exclusively
    (engine.exits): ``flock --shared --nonblock`` exits 0 at once while one does, else takes the
    shared lock (exit commands never exclude each other) and runs the command. As is when
    util-linux's flock is missing: then both clean up, which is idempotent."""
    flock = shutil.which("flock")
    if flock is None:
        return exit_command
    return [flock, "--shared", "--nonblock", "--conflict-exit-code", "0", str(lock), *exit_command]


# --- after the start --------------------------------------------------------------------

def proc_starttime(pid: int) -> int:
    """Field 22 of /proc/<pid>/stat (0 if the process is gone or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return 0
    rest = data[data.rfind(b")") + 2:].split()
    if not rest or rest[0] == b"Z":
        return 0
    return int(rest[19])


def alive(pid: int, starttime: int = 0) -> bool:
    """Whether ``pid`` runs (not a zombie) and, if given, is the same process as before."""
    if pid <= 0:
        return False
    current = proc_starttime(pid)
    return current != 0 and (starttime == 0 or current == starttime)


def read_exit(work: Path) -> int | None:
    """The exit code conmon wrote, or None while it has not."""
    try:
        text = (work / "exit").read_text().strip()
    except OSError:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def oom_reported(work: Path) -> bool:
    return (work / "oom").exists()


def wait_exit(work: Path, conmon_pid: int, conmon_start: int = 0, timeout: float | None = None, *,
              exit_command: bool = True) -> int | None:
    """Block until conmon has written the exit file (or is gone); return the code or None on timeout.

    ``exit_command``: whether this conmon runs an exit command (a detached container's). Such a
    conmon writes the file first and runs the command before it exits itself, so waiting for
    conmon alone answered up to 200 ms late: it is woken by the file's creation (inotify on
    ``work``). One without (an exec session, an attached run) exits right after writing the
    file: its pidfd alone says when, and no inotify instance is made (closing one waits for the
    kernel's SRCU grace period, 5-20 ms here, twice per ``exec`` before)."""
    code = read_exit(work)
    if code is not None:
        return code
    deadline = None if timeout is None else time.monotonic() + timeout
    pidfd = -1
    if conmon_pid > 0 and alive(conmon_pid, conmon_start):
        try:
            pidfd = os.pidfd_open(conmon_pid)
        except OSError:
            pidfd = -1
    if pidfd >= 0 and not exit_command:
        return _wait_pidfd(work, pidfd, deadline)
    from dockerbank.host.inotify import DirWatch

    watch = DirWatch(work)
    try:
        while True:
            code = read_exit(work)
            if code is not None:
                return code
            if not alive(conmon_pid, conmon_start):
                time.sleep(0.01)  # conmon writes the file just before it exits
                return read_exit(work)
            poll = 0.2 if watch.fd >= 0 and pidfd >= 0 else 0.02
            wait = poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic()))
            if deadline is not None and time.monotonic() >= deadline:
                return None
            watch.wait(wait, pidfd)
            watch.names()
    finally:
        watch.close()
        if pidfd >= 0:
            os.close(pidfd)


def _wait_pidfd(work: Path, pidfd: int, deadline: float | None) -> int | None:
    """The exit code once the conmon of ``pidfd`` (one without an exit command) ended; None at
    the deadline. Closes ``pidfd``."""
    try:
        while True:
            code = read_exit(work)
            if code is not None:
                return code
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            try:
                ready, _, _ = select.select([pidfd], [], [], remaining)
            except InterruptedError:
                continue
            if ready:
                return read_exit(work)  # written before conmon exited (None: it died without)
    finally:
        os.close(pidfd)


async def output_frames(sock: socket.socket) -> AsyncIterator[tuple[bool, bytes]]:
    """conmon's attach socket read in an event loop: (from stderr, bytes) per packet with
    output, until the output ends (the process exited) or the socket fails. Every transport
    that relays a process's output to a client asynchronously reads it here."""
    import asyncio

    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    while True:
        try:
            data = await loop.sock_recv(sock, BUF_SIZE)
        except OSError:
            return
        if not data:
            return
        if data[1:]:
            yield data[0] == STDERR, data[1:]  # the first byte names the stream


def connect_attach(work: Path) -> socket.socket:
    """Connect to conmon's attach socket; paths longer than sun_path go through /proc/self/fd."""
    import socket  # here, not at the top: ps and reconcile import this module and need no socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    dirfd = os.open(str(work), os.O_PATH)
    try:
        sock.connect(f"/proc/self/fd/{dirfd}/attach")
    except OSError as exc:
        sock.close()
        raise RuntimeFailure(f"cannot attach to the container: {exc}") from exc
    finally:
        os.close(dirfd)
    return sock


def resize(work: Path, rows: int, cols: int) -> None:
    """Tell conmon the terminal's size (its ``ctl`` FIFO: ``1 <rows> <cols>``)."""
    try:
        fd = os.open(str(work / "ctl"), os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    try:
        os.write(fd, f"1 {rows} {cols}\n".encode())
    except OSError:
        pass
    finally:
        os.close(fd)


def pump(sock: socket.socket, *, stdin_fd: int | None, stdout_fd: int, stderr_fd: int,
         detach_keys: bytes | None = b"\x10\x11") -> bool:
    """Copy the attach socket to stdout/stderr and stdin to the socket until conmon hangs up.

    Returns False when the user detached with the detach keys (ctrl-p ctrl-q), True at the end
    of the container's output.
    """
    import socket

    inputs: list[socket.socket | int] = [sock]
    if stdin_fd is not None:
        inputs.append(stdin_fd)
    while True:
        try:
            ready, _, _ = select.select(inputs, [], [])
        except InterruptedError:
            continue
        if sock in ready:
            try:
                data = sock.recv(BUF_SIZE)
            except ConnectionResetError:
                data = b""
            if not data:
                return True
            target = stderr_fd if data[0] == STDERR else stdout_fd
            _write_all(target, data[1:])
        if stdin_fd is not None and stdin_fd in ready:
            data = os.read(stdin_fd, 8192)
            if not data:
                inputs.remove(stdin_fd)
                stdin_fd = None
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                continue
            if detach_keys and detach_keys in data:
                before = data.split(detach_keys, 1)[0]
                if before:
                    sock.sendall(before)
                return False
            try:
                sock.sendall(data)
            except OSError:
                return True


def pump_to(sock: socket.socket, stdout, stderr) -> None:
    """Copy the attach socket's output to two sinks (``write(bytes)``) until conmon hangs up;
    no stdin, nothing process-wide (a server thread's road; :func:`pump` is the terminal's)."""
    while True:
        try:
            data = sock.recv(BUF_SIZE)
        except ConnectionResetError:
            return
        if not data:
            return
        if len(data) > 1:
            (stderr if data[0] == STDERR else stdout).write(data[1:])


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BrokenPipeError:
            return
        view = view[written:]
