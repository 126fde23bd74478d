"""The warm helper: a resident interpreter with Dockerbank imported that runs each command line
it is handed in a fork of itself (``python -m dockerbank.warm.helper SOCKET``; started by the
client, see docs/warm.md).

It holds no state of any Dockerbank root: no database, no lock, no container; the forked command
opens its root from the caller's own arguments and environment exactly as the CLI does. Killing
it at any moment therefore loses nothing, and a command under way is not even interrupted: it
runs in its own session and reports its exit status to the client itself.

One thread (forking is safe), no signal handler of its own (each command starts with a fresh
interpreter's dispositions). It leaves after ``DOCKERBANK_WARM_IDLE`` seconds without a command
(default 60), at once when its source files change (a newer Dockerbank must not be served by the
old code), and when its socket is no longer its own.
"""

from __future__ import annotations

import fcntl
import gc
import os
import select
import signal
import socket
import struct
import sys
import time

from dockerbank.warm import wire

# What the commands import, loaded once here instead of in every command (~45 ms of each).
PRELOAD = (
    "dockerbank.cli.main", "dockerbank.cli.fastpath", "dockerbank.cli.container_commands",
    "dockerbank.cli.group", "dockerbank.cli.containers", "dockerbank.cli.images", "dockerbank.cli.networks",
    "dockerbank.cli.volumes", "dockerbank.cli.system",
    "dockerbank.engine", "dockerbank.engine.containers", "dockerbank.container.lifecycle",
    "dockerbank.container.views", "dockerbank.container.logs", "dockerbank.container.health",
    "dockerbank.gotemplate", "dockerbank.runtime.oci", "dockerbank.runtime.conmon", "dockerbank.runtime.spec",
    "dockerbank.network.service", "dockerbank.network.bridge", "dockerbank.image.store", "dockerbank.volume.store", "dockerbank.volume.mounts",
    "dockerbank.state.db", "dockerbank.host.permissions", "dockerbank.host.detach",
    "sqlite3", "json", "subprocess", "tempfile", "termios", "tty", "datetime",
    # the rest of create/start/exec/run/rm's path (measured: ~10 ms of a create and ~20 ms of a
    # start were these imports in the command process; dataclass set-up is most of it)
    "dockerbank.host.reserve", "dockerbank.host.rootless", "dockerbank.host.mounts", "dockerbank.host.inotify",
    "dockerbank.host.cgroups", "dockerbank.host.overlay", "dockerbank.events.log", "dockerbank.events.watch",
    "dockerbank.container.logrotate", "dockerbank.container.logconfig", "dockerbank.container.users",
    "dockerbank.container.userns", "dockerbank.container.hostmodes", "dockerbank.runtime.seccomp_cache",
    "dockerbank.oci.imageconfig", "dockerbank.settings", "dockerbank.engine.container_options",
    "dockerbank.engine.sinks", "dockerbank.network.driver", "dockerbank.network.runtime",
    "dockerbank.network.etcfiles", "dockerbank.network.netavark",
    "queue", "heapq", "shlex", "resource", "glob", "ctypes",
)
REQUEST_TIMEOUT = 5.0   # a client that connected must send its command line at once
GO_TIMEOUT = 30.0       # ... and say go right after the ready


def main(argv: list[str]) -> int:
    """Serve ``argv[0]`` (the socket path the client derived from its identity) until idle."""
    path = argv[0]
    idle = float(os.environ.get("DOCKERBANK_WARM_IDLE", "60"))
    mine = wire.identity()
    if os.path.basename(path) != wire.fnv64(mine) + ".sock":
        return 1  # started by a caller of another identity (changed since): serve nobody
    lock = os.open(path[:-len(".sock")] + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another helper of this identity runs (or is starting)
    sources = _preload()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    temporary = f"{path}.{os.getpid()}"
    listener.bind(temporary)
    listener.listen(64)
    listener.setblocking(False)
    os.replace(temporary, path)  # a client sees the old socket (or none) or this one, never half of it
    bound = os.stat(path)
    os.ftruncate(lock, 0)
    os.write(lock, b"%d\n" % os.getpid())
    gc.collect()
    gc.freeze()  # the preloaded objects stay out of every collection: forked commands share their pages
    server = _Server(listener, lock, mine, sources)
    return server.serve(path, (bound.st_dev, bound.st_ino), idle)


def _preload() -> dict[str, int]:
    """Import what commands need; the source files of Dockerbank's modules with their mtimes."""
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001  (a module that fails here fails in the command, worded there)
            pass
    sources = {}
    tree = wire.package_dir() + os.sep
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and os.path.abspath(file).startswith(tree):  # this module too: it runs as __main__
            try:
                sources[file] = os.stat(file).st_mtime_ns
            except OSError:
                sources[file] = -1
    return sources


class _Server:
    def __init__(self, listener: socket.socket, lock: int, mine: bytes, sources: dict[str, int]):
        self.listener, self.lock, self.mine, self.sources = listener, lock, mine, sources
        self.served = 0
        self.running: dict[int, tuple[int, socket.socket]] = {}  # pidfd -> (pid, connection)
        self.clients: dict[int, int] = {}  # a running command's connection (fd) -> its pidfd

    def stale(self) -> bool:
        """True when a source file changed since the import: this interpreter runs old code."""
        for file, mtime in self.sources.items():
            try:
                if os.stat(file).st_mtime_ns != mtime:
                    return True
            except OSError:
                return True
        return False

    def serve(self, path: str, bound: tuple[int, int], idle: float) -> int:
        """Accept, fork a command process per connection, report each one's wait status."""
        poller = select.poll()
        poller.register(self.listener.fileno(), select.POLLIN)
        last = time.monotonic()
        while True:
            events = poller.poll(1000)
            if not events:
                if time.monotonic() - last > idle or not _still_mine(path, bound) or self.stale():
                    break
                continue
            # Ended commands and vanished clients first, accepting only after them: a descriptor
            # closed in this batch may be reused by an accept, and a later event of the batch
            # for the old one must not be taken for the new one's (a new command killed).
            for fd, _ in events:
                if fd in self.running:
                    poller.unregister(fd)
                    self._ended(fd, poller)
                elif fd in self.clients:
                    poller.unregister(fd)
                    self._client_gone(self.clients.pop(fd))
            if any(fd == self.listener.fileno() for fd, _ in events):
                try:
                    conn, _ = self.listener.accept()
                except OSError:  # BlockingIOError too: the listener never blocks the loop
                    continue
                conn.setblocking(True)
                last = time.monotonic()
                if not _same_user(conn):
                    conn.close()
                    continue
                if _query(conn):  # a status question (tests, docs/warm.md): answered here, not counted
                    _answer(conn, b"%d %d" % (os.getpid(), self.served))
                    conn.close()
                    continue
                if self.stale():
                    _answer(conn, b"S stale")
                    conn.close()
                    _leave(path, bound)
                    return 0
                try:
                    pid = os.fork()
                except OSError:
                    _answer(conn, b"S fork")
                    conn.close()
                    continue
                if pid == 0:
                    self._command(conn)  # never returns: exits with the command
                self.served += 1
                try:
                    pidfd = os.pidfd_open(pid)
                except OSError:
                    conn.close()  # the command reports its own exit code
                    continue
                self.running[pidfd] = (pid, conn)
                poller.register(pidfd, select.POLLIN)
                # only the hang-up: the command process reads this connection, the helper never does
                self.clients[conn.fileno()] = pidfd
                poller.register(conn.fileno(), select.POLLRDHUP)
        _leave(path, bound)
        return 0

    def _client_gone(self, pidfd: int) -> None:
        """The client vanished before its command ended: it was killed (every other signal it
        forwards, and it leaves only after the exit code). A CLI killed in the middle of a
        command stops there; so does its command process (SIGKILL, as the client got)."""
        if pidfd in self.running:
            try:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            except OSError:
                pass

    def _ended(self, pidfd: int, poller: select.poll) -> None:
        """A command process ended: its wait status to the client (which has it already from
        the process itself unless it died of a signal)."""
        pid, conn = self.running.pop(pidfd)
        if self.clients.pop(conn.fileno(), None) is not None:
            poller.unregister(conn.fileno())
        try:
            _, status = os.waitpid(pid, 0)
            _answer(conn, b"W%d" % status)
        except ChildProcessError:
            pass
        conn.close()
        os.close(pidfd)

    def _command(self, conn: socket.socket) -> None:
        """The command process: check the caller, take on its state, run its command line."""
        try:
            self.listener.close()
            os.close(self.lock)  # the lock must end with the helper, not with a long command
            for pidfd, (_, other) in self.running.items():
                os.close(pidfd)
                other.close()
            self.running.clear()
            self.clients.clear()
            os.setsid()  # no part of the helper's process group: killing one spares the other
            command = _session(conn, self.mine)
        except BaseException:  # noqa: BLE001  (nothing of the command ran: the client falls back)
            command = None
        if command is None:
            os._exit(0)
        _run(conn, *command)


def _session(conn: socket.socket, mine: bytes) -> tuple[str, list[str]] | None:
    """Read and check the request, take on the caller's fds, directory, umask and environment;
    the command line once the client said go (None: nothing to run)."""
    conn.settimeout(REQUEST_TIMEOUT)
    first = conn.recv(65536)
    while 0 < len(first) < 11:
        more = conn.recv(65536)
        if not more:
            break
        first += more
    if not first.startswith(b"R") or len(first) < 11:
        _answer(conn, b"S protocol")
        return None
    who, umask, argv0, argv, env = wire.decode_request(_read_body(conn, first))
    # the caller must be what this helper is, and this process still what it was at the start
    if who != mine or wire.identity() != mine:
        _answer(conn, b"S identity")
        return None
    _answer(conn, b"A")
    fds = _receive_fds(conn)
    if len(fds) != 4:
        for fd in fds:
            os.close(fd)
        _answer(conn, b"S protocol")
        return None
    for target, fd in zip((0, 1, 2), fds[:3]):
        os.dup2(fd, target)
    os.fchdir(fds[3])
    for fd in fds:
        os.close(fd)
    os.umask(umask)
    os.environb.clear()   # putenv/unsetenv: the C environment that children inherit changes too
    os.environb.update(env)
    _answer(conn, b"R%d" % os.getpid())
    conn.settimeout(GO_TIMEOUT)
    if conn.recv(1) != b"G":
        return None  # the client gave up before its go: it runs the command itself
    conn.settimeout(None)
    return argv0, argv


def _run(conn: socket.socket, argv0: str, argv: list[str]) -> None:
    """Run the command line as the CLI would and end this process as the CLI would end, after
    telling the client the exit code (the helper may be gone by then)."""
    _fresh_streams()
    sys.argv = [argv0, *argv]

    def report(code: int) -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        _answer(conn, b"X%d" % (code & 0xFF))
        conn.close()

    try:
        from dockerbank.cli.main import run_command

        code, fast = run_command(argv)
    except SystemExit as exc:  # a command ending itself (click's exits are returned already)
        code, fast = _exit_code(exc.code), False
    except BaseException as exc:  # noqa: BLE001  (as the interpreter prints an unhandled one)
        import traceback

        _last_words("".join(traceback.format_exception(exc)).rstrip())
        code, fast = 1, False
    threads = sys.modules.get("threading")
    if fast and (threads is None or threads.active_count() == 1):
        report(code)
        os._exit(code & 0xFF)  # as the CLI's fast path (cli.main._exit_at_once): no interpreter shutdown
    import atexit
    import threading

    # the CLI's other commands end through the interpreter's shutdown: threads joined, atexit
    # work done (its final teardown of modules is skipped, as on the fast path); the client
    # hears the code after it
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        shutdown()  # the interpreter's own step: thread pools told to end (their atexits), then joined
    else:
        for thread in threading.enumerate():
            if thread is not threading.current_thread() and not thread.daemon:
                thread.join()
    atexit.register(report, code)
    atexit._run_exitfuncs()  # LIFO: the command's own first, the report last
    os._exit(code & 0xFF)


def _exit_code(value) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    _last_words(str(value))
    return 1


def _last_words(text: str) -> None:
    try:
        sys.stderr.write(text + "\n")
    except (OSError, ValueError):
        pass


def _fresh_streams() -> None:
    """sys.stdin/stdout/stderr as the interpreter makes them at start-up, on the new fds 0-2
    (line-buffered stdout only on a terminal; stderr always line-buffered)."""
    import io

    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))

    def make(fd: int, mode: str, old):
        encoding = getattr(old, "encoding", None) or "utf-8"
        errors = getattr(old, "errors", None) or "strict"
        raw = io.FileIO(fd, mode, closefd=False)
        if mode == "r":
            return io.TextIOWrapper(io.BufferedReader(raw), encoding=encoding, errors=errors)
        buffered = raw if unbuffered else io.BufferedWriter(raw)
        line = fd == 2 or raw.isatty()
        return io.TextIOWrapper(buffered, encoding=encoding, errors=errors,
                                line_buffering=line, write_through=unbuffered)

    for name, fd, mode in (("stdin", 0, "r"), ("stdout", 1, "w"), ("stderr", 2, "w")):
        stream = make(fd, mode, getattr(sys, f"__{name}__"))
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _receive_fds(conn: socket.socket) -> list[int]:
    """The descriptors the client sends after the accept (one byte of data carries them)."""
    size = struct.calcsize("i")
    _, ancillary, _, _ = conn.recvmsg(1, socket.CMSG_SPACE(8 * size))
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % size
            fds += [int.from_bytes(payload[i:i + size], sys.byteorder, signed=True) for i in range(0, usable, size)]
    return fds


def _read_body(conn: socket.socket, first: bytes) -> bytes:
    length = int(first[1:11])
    body = first[11:]
    while len(body) < length:
        chunk = conn.recv(min(1 << 20, length - len(body)))
        if not chunk:
            raise ConnectionError("the client left")
        body += chunk
    return body


def _query(conn: socket.socket) -> bool:
    """Whether the connection asks for the status (``Q``) rather than bringing a command; a
    client sends its first bytes right after connecting, so this waits for them briefly."""
    conn.settimeout(0.2)
    try:
        first = conn.recv(1, socket.MSG_PEEK)
    except OSError:
        return False
    finally:
        conn.settimeout(None)
    return first == b"Q"


def _answer(conn: socket.socket, line: bytes) -> None:
    try:
        conn.sendall(line + b"\n")
    except OSError:
        pass


def _same_user(conn: socket.socket) -> bool:
    """Only this helper's own user is served (the socket's directory is closed to others too)."""
    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return False
    _, uid, gid = struct.unpack("3i", creds)
    return uid == os.getuid() and gid == os.getgid()


def _still_mine(path: str, bound: tuple[int, int]) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == bound


def _leave(path: str, bound: tuple[int, int]) -> None:
    """Remove the socket if it is still this helper's (a newer one may have replaced it)."""
    if _still_mine(path, bound):
        try:
            os.unlink(path)
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
