"""What the client and the warm helper agree on: where the socket is, who may use it, and how a
command line travels. Pure functions of bytes, plus the reads of ``/proc/self`` that say who a
process is. Built-in modules only (``os``, ``sys``): the client imports this at every call.

A helper serves a command only for a caller that is the *same kind of process* as itself: same
user and groups, capabilities, namespaces, cgroup, resource limits, scheduling, interpreter,
source tree and interpreter-relevant environment (``identity``). The socket's name is a hash of
that identity, so callers that differ get helpers of their own or none, and the helper checks
the whole identity again before it runs anything.
"""

from __future__ import annotations

import os
import sys

PROTOCOL = b"DBW2"
# the lines of /proc/self/status that say who a process is (not what it is doing)
_STATUS_KEYS = (b"Uid:", b"Gid:", b"Groups:", b"CapInh:", b"CapPrm:", b"CapEff:", b"CapBnd:", b"CapAmb:",
                b"NoNewPrivs:", b"Seccomp:", b"Seccomp_filters:", b"Cpus_allowed_list:", b"Mems_allowed_list:")
_NAMESPACES = ("mnt", "net", "pid", "user", "uts", "ipc", "cgroup", "time")
# environment that changes how the interpreter itself behaves (encodings, buffering, paths)
_ENV_PREFIXES = (b"PYTHON", b"LC_", b"LANG")


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 65536)
    finally:
        os.close(fd)


def package_dir() -> str:
    """The source tree this interpreter runs Dockerbank from."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def identity() -> bytes:
    """Everything about this process that a command run on its behalf must share with it."""
    # the interpreter (``venv/bin/python`` and ``python3`` are the same one) and the source tree
    parts = [PROTOCOL, os.fsencode(os.path.realpath(sys.executable)), os.fsencode(sys.prefix),
             os.fsencode(package_dir()), _version()]
    status = _read("/proc/self/status")
    parts += [line for line in status.split(b"\n") if line.startswith(_STATUS_KEYS)]
    parts.append(_read("/proc/self/cgroup"))
    parts.append(_read("/proc/self/limits"))
    parts.append(_read("/proc/self/oom_score_adj"))
    parts.append(b"nice=%d" % os.getpriority(os.PRIO_PROCESS, 0))
    for name in _NAMESPACES:
        try:
            parts.append(os.fsencode(os.readlink("/proc/self/ns/" + name)))
        except OSError:
            parts.append(b"-")
    flags = sys.flags
    parts.append(b"flags=%d,%d,%d,%d" % (flags.optimize, flags.dev_mode, flags.utf8_mode, flags.bytes_warning))
    parts.append(repr(sys.warnoptions).encode())
    parts += sorted(b"%s=%s" % kv for kv in os.environb.items() if kv[0].startswith(_ENV_PREFIXES))
    return b"\n".join(parts)


def _version() -> bytes:
    from dockerbank import __version__

    return __version__.encode()


def fnv64(data: bytes) -> str:
    """FNV-1a, 64 bits, as hex: a socket name from the identity (no hashlib import)."""
    value = 0xcbf29ce484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % value


def socket_dir(uid: int | None = None) -> str | None:
    """The directory of this user's helper sockets: created 0700 if missing, refused (None) when
    it is not a directory of this user closed to everybody else."""
    uid = os.getuid() if uid is None else uid
    if uid == 0:
        path = "/run/dockerbank-warm"
    else:
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        path = os.path.join(runtime, "dockerbank-warm") if runtime else "/tmp/dockerbank-warm-%d" % uid
    return private_dir(path, uid)


def private_dir(path: str, uid: int) -> str | None:
    """``path``, created 0700 if missing, when it is a directory (not a link) owned by ``uid``
    and closed to everybody else; else None (another user could plant or read sockets there)."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if (st.st_mode & 0o170000) != 0o040000 or st.st_uid != uid or st.st_mode & 0o077:
        return None
    return path


def encode_request(who: bytes, argv0: str, argv: list[str], umask: int, env: dict[bytes, bytes]) -> bytes:
    """A command line as the helper reads it: NUL-separated fields after a length; ``who`` is
    the caller's :func:`identity`."""
    fields = [who, b"%o" % umask, os.fsencode(argv0), b"%d" % len(argv)]
    fields += [os.fsencode(arg) for arg in argv]
    fields += [key + b"=" + value for key, value in env.items()]
    body = b"\0".join(fields)
    return b"R%010d" % len(body) + body


def decode_request(body: bytes) -> tuple[bytes, int, str, list[str], dict[bytes, bytes]]:
    """The inverse of :func:`encode_request` (without its ``R`` and length): identity, umask,
    argv0, argv, env."""
    fields = body.split(b"\0")
    who, umask, argv0, count = fields[0], int(fields[1], 8), os.fsdecode(fields[2]), int(fields[3])
    argv = [os.fsdecode(item) for item in fields[4:4 + count]]
    env = {}
    for item in fields[4 + count:]:
        key, eq, value = item.partition(b"=")
        if eq:
            env[key] = value
    return who, umask, argv0, argv, env
