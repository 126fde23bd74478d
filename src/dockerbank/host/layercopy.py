"""A copy of an image layer with its owners shifted into a container's subordinate IDs.

The fallback of :mod:`dockerbank.host.idmap` for kernels that cannot ID-map overlay lower layers
(Podman's storage does the same, its "chown" road): ``cp -a`` copies the layer (data, devices
such as overlay whiteouts, hard links, ``trusted.overlay.*`` and other xattrs, times), then one
walk ``lchown``s every entry from container IDs to the mapping's host IDs. ``chown`` clears the
setuid/setgid bits and file capabilities, so both are put back; capabilities are rewritten in
the namespaced (v3) form whose root is the container's root, as an ID-mapped mount would show them.

The copy is made under a temporary name and renamed into place: a killed copy leaves no layer
that looks complete.
"""

from __future__ import annotations

import os
import shutil
import stat
import struct
import subprocess
from pathlib import Path

from dockerbank.errors import RuntimeFailure

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import Any

CAP_XATTR = "security.capability"
_V2, _V3 = 0x02000000, 0x03000000   # VFS_CAP_REVISION_2/3 (linux/capability.h)
_REVISION_MASK = 0xFF000000


def shifted(maps: list[dict[str, Any]], inner: int) -> int:
    """The host ID a file owned by container ID ``inner`` gets in the copy (pure): unmapped IDs
    become the mapping's ``nobody`` (what they read as through an ID-mapped mount)."""
    from dockerbank.oci.idmapping import NOBODY, to_host

    host = to_host(maps, inner)
    if host is None:
        host = to_host(maps, NOBODY)
    return NOBODY if host is None else host


def namespaced_caps(value: bytes, root_uid: int) -> bytes:
    """A ``security.capability`` value as v3 with ``root_uid`` as its namespace root (pure): v2
    capabilities belong to host root and would be ignored inside a user namespace."""
    if len(value) < 20:
        return value
    (magic,) = struct.unpack_from("<I", value)
    if magic & _REVISION_MASK not in (_V2, _V3):
        return value
    return struct.pack("<I", _V3 | (magic & ~_REVISION_MASK)) + value[4:20] + struct.pack("<I", root_uid)


def copy_shifted(src: Path, dest: Path, uid_maps: list[dict[str, Any]], gid_maps: list[dict[str, Any]]) -> None:
    """Make ``dest`` (absent) a copy of the directory ``src`` with owners shifted by the maps."""
    tmp = dest.with_name(f".tmp-{dest.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    done = subprocess.run(["cp", "-a", "--reflink=auto", "--", str(src), str(tmp)], stdin=subprocess.DEVNULL,
                          capture_output=True, check=False)
    if done.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        reason = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["cp failed"]
        raise RuntimeFailure(f"cannot copy image layer {src} for a user namespace: {reason[0]}")
    try:
        shift_tree(tmp, uid_maps, gid_maps)
        os.rename(tmp, dest)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeFailure(f"cannot shift the owners of image layer {src}: {exc.strerror or exc}") from None


def shift_tree(top: Path, uid_maps: list[dict[str, Any]], gid_maps: list[dict[str, Any]]) -> None:
    """Shift the owners of ``top`` and everything below it from container IDs to host IDs."""
    root_uid = shifted(uid_maps, 0)
    linked: set[int] = set()   # inodes of hard links already shifted (once, not twice)
    _shift(top, uid_maps, gid_maps, root_uid, linked)
    for dirpath, dirnames, filenames in os.walk(top):
        for name in (*dirnames, *filenames):
            _shift(os.path.join(dirpath, name), uid_maps, gid_maps, root_uid, linked)


def _shift(path: str | Path, uid_maps: list[dict[str, Any]], gid_maps: list[dict[str, Any]], root_uid: int,
           linked: set[int]) -> None:
    st = os.lstat(path)
    if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
        if st.st_ino in linked:
            return
        linked.add(st.st_ino)
    caps = None
    if stat.S_ISREG(st.st_mode):
        try:
            caps = os.getxattr(path, CAP_XATTR, follow_symlinks=False)
        except OSError:
            caps = None   # ENODATA: none (the usual case)
    os.lchown(path, shifted(uid_maps, st.st_uid), shifted(gid_maps, st.st_gid))
    if stat.S_ISLNK(st.st_mode):
        return
    if st.st_mode & (stat.S_ISUID | stat.S_ISGID):   # chown cleared them
        os.chmod(path, stat.S_IMODE(st.st_mode))
    if caps is not None:
        os.setxattr(path, CAP_XATTR, namespaced_caps(caps, root_uid), follow_symlinks=False)
