"""Rootless Dockerbank: an ordinary user's engine, run inside a user namespace of its own.

The user's own ID is root in that namespace and its ``/etc/subuid``/``/etc/subgid`` ranges
(set up by ``newuidmap``/``newgidmap`` from Debian's ``uidmap``) are IDs 1..N, so image layers keep
their owners; a mount namespace owned by it lets the engine mount overlayfs (Linux >= 5.11).
Here are the facts the rest of the engine asks: whether this process is such a "fake root".
"""

from __future__ import annotations

import os

from dockerbank.config import USER_ENV, user_paths

IDENTITY = "0 0 4294967295"

#: what an ordinary user's engine cannot do yet, and why (one line each)
ROOTLESS_NETWORK = ("rootless Dockerbank publishes ports through slirp4netns, which is not installed: "
                    "apt-get install slirp4netns (then stop the user's namespace holder: kill $(cut -d' ' -f1 "
                    "$XDG_RUNTIME_DIR/dockerbank/pause.pid))")
SLIRP_GUEST = "10.0.2.100"   # slirp4netns --configure: the tap address in the user's network namespace


def identity_map(uid_map_text: str) -> bool:
    """Whether ``/proc/self/uid_map`` text is the initial namespace's (pure)."""
    return " ".join(uid_map_text.split()) == IDENTITY


def in_user_namespace() -> bool:
    """Whether this process runs in a user namespace below the host's (rootless mode)."""
    try:
        with open("/proc/self/uid_map") as f:
            return not identity_map(f.read())
    except OSError:
        return False


def rootless() -> bool:
    """Rootless: an ordinary user (not yet in its namespace) or the fake root inside it."""
    return os.geteuid() != 0 or in_user_namespace()


def rootless_uid() -> int | None:
    """The ordinary user's uid when this engine is rootless (outside or inside its namespace)."""
    if os.geteuid() != 0:
        return os.geteuid()
    value = os.environ.get(USER_ENV, "")
    return int(value) if value.isdigit() and in_user_namespace() else None


def user_name(uid: int) -> str:
    """The login name of ``uid`` (the number when it has none)."""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def ranges_or_error(uid: int) -> tuple[int, int, int, int]:
    """The first subordinate UID and GID range of user ``uid`` as (uid start, uid count, gid
    start, gid count); one line saying what to add where when there is none."""
    import shutil

    from dockerbank.errors import InvalidArgument
    from dockerbank.host import subids

    name = user_name(uid)
    missing = [tool for tool in ("newuidmap", "newgidmap") if shutil.which(tool) is None]
    if missing:
        raise InvalidArgument(f"rootless Dockerbank needs {' and '.join(missing)}: install Debian's uidmap "
                              "(apt-get install uidmap)", exit_code=125)
    uids, gids = subids.user_ranges(name)
    if not uids or not gids:
        where = " and ".join(str(p) for p, r in ((subids.SUBUID, uids), (subids.SUBGID, gids)) if not r)
        raise InvalidArgument(f"user {name} has no subordinate IDs: root must add a line '{name}:<start>:65536' "
                              f"to {where} (usermod --add-subuids/--add-subgids)", exit_code=125)
    big_u = next((r for r in uids if r.count >= 65536), uids[0])
    big_g = next((r for r in gids if r.count >= 65536), gids[0])
    return big_u.start, big_u.count, big_g.start, big_g.count


def _pause_alive(run_root: str, name: str = "pause.pid") -> int | None:
    """The pid of the user's namespace holder (or of another helper recorded in ``name``), if it
    still runs (pid and start time recorded)."""
    try:
        pid_text, start = open(os.path.join(run_root, name)).read().split()
        pid = int(pid_text)
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        if fields[19] != start or fields[0] in ("Z", "X"):   # another process, or a dead one not yet reaped
            return None
        return pid
    except (OSError, ValueError, IndexError):
        return None


def _start_pause(run_root: str, uid: int) -> int:
    """Start the process that holds the user's user and mount namespaces (Podman's pause
    process): ``unshare`` maps the user to root and its subordinate IDs to 1..N through newuidmap.
    It holds a network namespace of the user's too (Podman's "rootless netns"): the bridges,
    veths, firewall rules and aardvark-dns of the user's networks live there, never on the host."""
    import subprocess
    import time

    from dockerbank.errors import RuntimeFailure

    ustart, ucount, gstart, gcount = ranges_or_error(uid)
    child = subprocess.Popen(
        ["unshare", "--map-root-user", f"--map-users={ustart},1,{ucount}", f"--map-groups={gstart},1,{gcount}",
         "--mount", "--propagation", "private", "--net", "sleep", "infinity"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        cwd="/")
    deadline = time.monotonic() + 10
    while True:
        try:
            with open(f"/proc/{child.pid}/comm") as f:
                if f.read().strip() == "sleep":   # unshare has mapped the IDs and exec'd
                    break
        except OSError:
            pass
        if child.poll() is not None:
            reason = (child.stderr.read() if child.stderr else b"").decode(errors="replace").strip().splitlines()
            raise RuntimeFailure("cannot create the user namespace of rootless Dockerbank: "
                                 + (reason[-1] if reason else "unshare failed"))
        if time.monotonic() > deadline:
            child.kill()
            raise RuntimeFailure("cannot create the user namespace of rootless Dockerbank: unshare did not start")
        time.sleep(0.001)
    if child.stderr:
        child.stderr.close()
    with open(f"/proc/{child.pid}/stat") as f:
        start = f.read().rsplit(")", 1)[1].split()[19]
    _start_slirp(run_root, child.pid)
    tmp = os.path.join(run_root, "pause.pid.tmp")
    with open(tmp, "w") as f:
        f.write(f"{child.pid} {start}\n")
    os.replace(tmp, os.path.join(run_root, "pause.pid"))
    return child.pid


def _start_slirp(run_root: str, pid: int) -> None:
    """Connect the user's network namespace to the host's network with slirp4netns (user-mode
    TCP/IP: the way out for containers, and published ports through its API socket). Without
    slirp4netns the user's networks stay internal and ``-p`` says what to install."""
    import shutil
    import subprocess
    import time

    binary = shutil.which("slirp4netns")
    if binary is None:
        return
    sock = os.path.join(run_root, "slirp4netns.sock")
    if os.path.exists(sock):
        os.unlink(sock)
    old = _pause_alive(run_root, "slirp4netns.pid")
    if old is not None:   # the one of a holder that is gone
        try:
            os.kill(old, 9)
        except OSError:
            pass
    proc = subprocess.Popen([binary, "--configure", "--mtu=65520", "--disable-host-loopback", "--api-socket", sock,
                             str(pid), "tap0"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, cwd="/")
    deadline = time.monotonic() + 10
    while not os.path.exists(sock) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    with open(f"/proc/{proc.pid}/stat") as f:
        start = f.read().rsplit(")", 1)[1].split()[19]
    with open(os.path.join(run_root, "slirp4netns.pid"), "w") as f:
        f.write(f"{proc.pid} {start}\n")


def enter(run_root: str | None = None) -> None:
    """Make this (ordinary user's, single-threaded) process root of the user's namespaces: join
    the holder process's user and mount namespaces (started on first use) and become ID 0 in them.
    The engine then runs as it does for root, in the user's own root and run root."""
    import ctypes
    import fcntl

    from dockerbank.errors import RuntimeFailure

    uid = os.geteuid()
    run_root = run_root or user_paths(uid, dict(os.environ))[1]
    if _pause_alive(run_root) is None:
        ranges_or_error(uid)  # a user without subordinate IDs (or without newuidmap): nothing is created
    os.makedirs(run_root, mode=0o700, exist_ok=True)
    lock = os.open(os.path.join(run_root, "pause.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pid = _pause_alive(run_root) or _start_pause(run_root, uid)
    finally:
        os.close(lock)
    libc = ctypes.CDLL(None, use_errno=True)
    cwd = os.getcwd()
    os.environ[USER_ENV] = str(uid)
    for ns, flag in (("user", 0x10000000), ("mnt", 0x00020000)):
        fd = os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if libc.setns(fd, flag) != 0:
                raise RuntimeFailure(f"cannot join the {ns} namespace of rootless Dockerbank: "
                                     f"{os.strerror(ctypes.get_errno())}")
        finally:
            os.close(fd)
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    try:
        os.chdir(cwd)
    except OSError:
        os.chdir("/")


def holder_pid() -> int | None:
    """The pid of this rootless engine's namespace holder (None when not rootless)."""
    uid = rootless_uid()
    if uid is None:
        return None
    return _pause_alive(user_paths(uid, dict(os.environ))[1])


def net_prefix() -> list[str]:
    """argv prefix that runs a network tool (netavark, iptables) in the user's network namespace
    when this engine is rootless; [] for root's engine (the host's namespace)."""
    pid = holder_pid()
    if pid is None:
        return []
    return ["nsenter", f"--net=/proc/{pid}/ns/net", "--"]


def _slirp(request: dict) -> dict:
    """One call of slirp4netns's API (JSON over its unix socket)."""
    import json
    import socket

    from dockerbank.errors import NotSupported, RuntimeFailure

    uid = rootless_uid()
    sock_path = os.path.join(user_paths(uid if uid is not None else os.geteuid(), dict(os.environ))[1],
                             "slirp4netns.sock")
    if not os.path.exists(sock_path):
        raise NotSupported(ROOTLESS_NETWORK, exit_code=125)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect(sock_path)
        conn.sendall(json.dumps(request).encode())
        conn.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    reply = json.loads(data or b"{}")
    if "error" in reply:
        raise RuntimeFailure(f"slirp4netns {request['execute']}: {reply['error'].get('desc', reply['error'])}")
    return dict(reply.get("return", reply) or {})   # list_hostfwd answers without the "return" wrapper


def publish(mappings: list) -> None:
    """Rootless: forward each published host port (``network.model.PortMapping``) from the host
    into the user's network namespace, where netavark's rules take it to the container. No-op for
    root's engine."""
    if holder_pid() is None:
        return
    for m in mappings:
        if m.protocol not in ("tcp", "udp"):
            continue
        _slirp({"execute": "add_hostfwd", "arguments": {
            "proto": m.protocol, "host_addr": m.host_ip or "0.0.0.0", "host_port": m.host_port,
            "guest_addr": SLIRP_GUEST, "guest_port": m.host_port}})


def unpublish(mappings: list) -> None:
    """Undo :func:`publish` (never raises: a teardown goes on)."""
    if holder_pid() is None or not mappings:
        return
    try:
        entries = _slirp({"execute": "list_hostfwd"}).get("entries") or []
        wanted = {(m.protocol, m.host_port) for m in mappings}
        for entry in entries:
            if (entry.get("proto"), entry.get("host_port")) in wanted:
                _slirp({"execute": "remove_hostfwd", "arguments": {"id": entry["id"]}})
    except Exception:  # noqa: BLE001 - the namespace holder may be gone: nothing left to undo
        pass
