"""ID-mapped mounts: one image layer seen with a container's subordinate IDs, shared, not copied.

An image layer on disk belongs to host root. A container whose root is host ID 2147483648 sees
those files as ``nobody`` and cannot write them. Linux >= 5.12 can mount a directory "idmapped"
(``mount_setattr(MOUNT_ATTR_IDMAP)`` with a user namespace): IDs read through it are shifted by
the namespace's mapping, and overlayfs accepts such mounts as lower layers since 5.19. So each
layer stays one copy on disk for every container whatever its mapping (Podman does the same).

The user namespace that carries the mapping is made by a short-lived ``unshare -U`` child (root
writes its maps; no process-wide change here, so API threads may call it); its fd outlives it.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import time

from dockerbank.errors import RuntimeFailure

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import Any

OPEN_TREE = 428
MOUNT_SETATTR = 442
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = 0o2000000
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
MOUNT_ATTR_IDMAP = 0x00100000


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def map_text(maps: list[dict[str, Any]]) -> str:
    """``/proc/PID/uid_map`` content of OCI mappings, pure."""
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps)


def userns_fd(uid_maps: list[dict[str, Any]], gid_maps: list[dict[str, Any]], timeout: float = 5.0) -> int:
    """An fd of a new user namespace with these mappings (the caller closes it)."""
    child = subprocess.Popen(["unshare", "--user", "sleep", "60"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        ours = os.readlink("/proc/self/ns/user")
        deadline = time.monotonic() + timeout
        while True:  # until the child has unshared (a few hundred microseconds)
            try:
                if os.readlink(f"/proc/{child.pid}/ns/user") != ours:
                    break
            except FileNotFoundError:
                pass
            if child.poll() is not None:
                reason = (child.stderr.read() if child.stderr else b"").decode(errors="replace").strip()
                raise RuntimeFailure(f"cannot create a user namespace: {reason or 'unshare failed'}")
            if time.monotonic() > deadline:
                raise RuntimeFailure("cannot create a user namespace: unshare did not start")
            time.sleep(0.0002)
        try:
            with open(f"/proc/{child.pid}/uid_map", "w") as f:
                f.write(map_text(uid_maps))
            with open(f"/proc/{child.pid}/gid_map", "w") as f:
                f.write(map_text(gid_maps))
            return os.open(f"/proc/{child.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise RuntimeFailure(f"cannot map IDs in a user namespace: {exc.strerror}") from None
    finally:
        child.kill()
        child.wait()
        if child.stderr:
            child.stderr.close()


def idmapped_clone(path: str, ns_fd: int) -> int:
    """A detached, ID-mapped copy of the mount of ``path`` (an O_PATH-like fd; close it after use).

    Raises RuntimeFailure with the kernel's reason (EINVAL: the filesystem or kernel cannot)."""
    libc = ctypes.CDLL(None, use_errno=True)
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    fd = syscall(ctypes.c_long(OPEN_TREE), ctypes.c_long(AT_FDCWD), ctypes.c_char_p(os.fsencode(path)),
                 ctypes.c_long(OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC))
    if fd < 0:
        raise RuntimeFailure(f"cannot clone the mount of {path}: {os.strerror(ctypes.get_errno())}")
    attr = _MountAttr(MOUNT_ATTR_IDMAP, 0, 0, ns_fd)
    if syscall(ctypes.c_long(MOUNT_SETATTR), ctypes.c_long(fd), ctypes.c_char_p(b""), ctypes.c_long(AT_EMPTY_PATH),
               ctypes.byref(attr), ctypes.c_long(ctypes.sizeof(attr))) < 0:
        err = ctypes.get_errno()
        os.close(fd)
        raise RuntimeFailure(f"this kernel or filesystem cannot ID-map {path}: {os.strerror(err)}")
    return int(fd)
