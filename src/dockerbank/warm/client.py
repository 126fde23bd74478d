"""The ``dockerbank`` entry point: hand the command line to a warm helper, else run it here.

Built-in modules only (``_socket``, ``_signal``, ``os``, ``sys``): this runs before every
command, and importing ``socket`` or ``signal`` alone (their enums) costs more than the whole
exchange with the helper.

The exchange (see docs/warm.md): connect to this identity's socket; send the command line, the
umask and the environment; the helper's per-command process answers ``A`` (accepted) or ``S``
(refused: run it here); then the fds 0, 1, 2 and the working directory (SCM_RIGHTS), answered
by ``R`` (ready). Only after ``R`` does
the client say ``G`` (go): until then nothing has run, so any failure, timeout or refusal falls
back to running the command in this process. The ready names the command's process, which
runs the command after the go and says ``X<exit code>``; the helper adds ``W<wait status>`` when
that process ends (the one answer if it died of a signal). This client forwards its signals to
that process and ends as it ended (of the same signal, if it died of one).
"""

from __future__ import annotations

import os
import sys

import _signal
import _socket

from dockerbank.warm import wire

HANDSHAKE_TIMEOUT = 2.0  # a stopped or overloaded helper must not hold a command for long
# the signals a user or a supervisor sends to a CLI; they reach the command's process
FORWARDED = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT, _signal.SIGUSR1,
             _signal.SIGUSR2, _signal.SIGWINCH, _signal.SIGCONT)


def main() -> None:
    """Run ``sys.argv[1:]`` through a warm helper when one serves this caller, else in-process."""
    argv = sys.argv[1:]
    try:
        code = run_warm(argv)
    except KeyboardInterrupt:
        os._exit(130)
    if code is None:
        from dockerbank.cli.main import entry

        entry(argv)
        return
    os._exit(code)


def mode() -> str:
    """``DOCKERBANK_WARM``: ``0`` never, ``force`` start one and wait for it (tests), else on demand."""
    value = os.environ.get("DOCKERBANK_WARM", "1").strip().lower()
    return "0" if value in ("0", "false", "no", "off") else "force" if value == "force" else "1"


def _plain_interpreter() -> bool:
    """A helper is started as a plain ``python``; options that change how code runs keep the
    command in this process (``-O``, ``-X dev``, ``-W``, ``-b``)."""
    flags = sys.flags
    return not (flags.optimize or flags.dev_mode or flags.bytes_warning or sys.warnoptions)


def socket_path(who: bytes | None = None) -> str | None:
    """The helper socket of the caller of identity ``who`` (this process's by default); None
    when there is no safe directory for one."""
    place = wire.socket_dir()
    if place is None:
        return None
    return os.path.join(place, wire.fnv64(wire.identity() if who is None else who) + ".sock")


def run_warm(argv: list[str]) -> int | None:
    """The command's exit code when a helper ran it; None when it must run in this process
    (nothing of it has run then)."""
    how = mode()
    if how == "0" or not _plain_interpreter():
        return None
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            return None  # a closed standard stream: the in-process CLI knows what to do with it
    who = wire.identity()
    path = socket_path(who)
    if path is None:
        return None
    may_start = not exit_command(argv)
    sock = _connect(path)
    if sock is None and may_start:
        start_helper(path)
        if how == "force":
            sock = _wait_connect(path, 15.0)
    if sock is None:
        return None
    try:
        return _exchange(sock, who, argv, path, may_start)
    finally:
        sock.close()


def exit_command(argv: list[str]) -> bool:
    """Whether this is conmon's exit command (``[--root R --runroot RR] container cleanup ID``),
    run when a container ends: it uses a running helper but never starts one."""
    i = 0
    while i < len(argv) and argv[i].startswith(("--root", "--runroot")):
        i += 1 if "=" in argv[i] else 2
    return argv[i:i + 2] == ["container", "cleanup"]


def _connect(path: str):
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.settimeout(HANDSHAKE_TIMEOUT)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    return sock


def _wait_connect(path: str, timeout: float):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock = _connect(path)
        if sock is not None:
            return sock
        time.sleep(0.02)
    return None


def _exchange(sock, who: bytes, argv: list[str], path: str, may_start: bool) -> int | None:
    umask = os.umask(0o022)
    os.umask(umask)
    try:
        cwd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None  # a deleted working directory: as the CLI would see it
    try:
        # the descriptors go only to a helper that has taken the request: passed ones sit in a
        # socket's queue until it is read, and a caller waiting for EOF on a pipe would wait on
        # a stopped helper's queue forever
        reader = _Lines(sock)
        try:
            sock.sendall(wire.encode_request(who, sys.argv[0], argv, umask, dict(os.environb)))
            answer = reader.line()
            if answer == b"A":
                fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in (0, 1, 2, cwd))
                sock.sendmsg([b"F"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
                answer = reader.line()
        except OSError:
            return None
    finally:
        os.close(cwd)
    if not answer.startswith(b"R"):
        if answer == b"S stale" and may_start:
            start_helper(path)  # the old one is leaving: the next command finds a fresh one
        return None
    code = _supervise(sock, reader, int(answer[1:]))
    return None if code < 0 else code


def _supervise(sock, reader: _Lines, pid: int) -> int:
    """After the ready: forward signals to the command's process, say go, end as it ended."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return -1

    def forward(signum, _frame):
        try:
            _signal.pidfd_send_signal(pidfd, signum)
        except OSError:
            pass

    def stop(signum, _frame):
        """ctrl-z: stop the command too, then this client (the shell's job control sees it)."""
        forward(_signal.SIGSTOP, None)
        os.kill(os.getpid(), _signal.SIGSTOP)

    for signum in FORWARDED:
        _signal.signal(signum, forward)
    _signal.signal(_signal.SIGTSTP, stop)
    sock.settimeout(None)
    try:
        sock.sendall(b"G")
    except OSError:
        pass   # its answer (or its end) follows
    status = None
    while status is None:
        try:
            line = reader.line()
        except OSError:
            line = b""
        if not line:
            break
        if line.startswith(b"X"):   # from the command's process: its exit code
            status = (int(line[1:]) & 0xFF) << 8
        elif line.startswith(b"W"):  # from the helper: the process's wait status
            status = int(line[1:])
    if status is None:
        os.write(2, b"Error: the command's process ended without telling its exit code (warm helper gone)\n")
        return 125
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        for other in FORWARDED:
            _signal.signal(other, _signal.SIG_DFL)
        if signum not in (_signal.SIGKILL, _signal.SIGSTOP):  # those two have no handler to reset
            _signal.signal(signum, _signal.SIG_DFL)
        os.kill(os.getpid(), signum)  # die of it as the command did (a shell then reports the same)
        return 128 + signum
    return os.waitstatus_to_exitcode(status)


class _Lines:
    """Newline-ended answers off a stream socket."""

    def __init__(self, sock):
        self.sock, self.buffer = sock, b""

    def line(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                return b""
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line


def start_helper(path: str) -> None:
    """Start a helper for ``path`` in the background, detached from this process: its own
    session, stdio on /dev/null, no inherited descriptor (a caller reading this command's
    output must not wait for the helper), working directory ``/``."""
    try:
        pid = os.fork()
    except OSError:
        return
    if pid > 0:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        return
    try:
        os.setsid()
        if os.fork() == 0:
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.closerange(3, 1 << 16)
            os.chdir("/")
            # the caller's UTF-8 mode, which the C locale's coercion (PEP 538) would not pass on
            os.execv(sys.executable, [sys.executable, "-X", "utf8=%d" % sys.flags.utf8_mode,
                                      "-m", "dockerbank.warm.helper", path])
    except BaseException:  # noqa: BLE001  (the caller runs its command in-process anyway)
        pass
    os._exit(0)


def status() -> tuple[int, int] | None:
    """(pid, commands served) of the helper that would serve this process, or None."""
    path = socket_path()
    sock = _connect(path) if path else None
    if sock is None:
        return None
    try:
        sock.sendall(b"Q")
        answer = _Lines(sock).line().split()
        return (int(answer[0]), int(answer[1])) if len(answer) == 2 else None
    except (OSError, ValueError):
        return None
    finally:
        sock.close()
