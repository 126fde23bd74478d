"""The mount table (``/proc/self/mountinfo``) and lazy unmounts, for ``system check``
to find overlay roots a crashed or killed CLI left mounted."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from dockerbank.errors import RuntimeFailure

MNT_DETACH = 2


@dataclass(frozen=True)
class MountInfo:
    """One line of ``/proc/<pid>/mountinfo`` (see proc(5))."""

    mount_id: int
    parent_id: int
    major_minor: str
    root: str
    mount_point: str
    options: tuple[str, ...]
    optional: tuple[str, ...]
    fstype: str
    source: str
    super_options: tuple[str, ...]

    def super_option(self, key: str) -> str | None:
        """Value of ``key=value`` in the superblock options (e.g. ``upperdir``)."""
        prefix = key + "="
        for opt in self.super_options:
            if opt.startswith(prefix):
                return opt[len(prefix):]
        return None


def unescape(text: str) -> str:
    """Undo mountinfo's octal escapes (``\\040`` space, ``\\011`` tab, ``\\012``, ``\\134``)."""
    if "\\" not in text:
        return text
    out = []
    i = 0
    while i < len(text):
        chunk = text[i + 1:i + 4]
        if text[i] == "\\" and len(chunk) == 3 and all(c in "01234567" for c in chunk):
            out.append(chr(int(chunk, 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _split_options(text: str) -> tuple[str, ...]:
    # overlay's lowerdir=a:b:c never contains commas (Dockerbank's paths do not either).
    return tuple(unescape(opt) for opt in text.split(",")) if text else ()


def parse_mountinfo(text: str) -> list[MountInfo]:
    """Parse the text of a mountinfo file (pure); malformed lines are skipped."""
    mounts: list[MountInfo] = []
    for line in text.splitlines():
        parts = line.split(" ")
        try:
            sep = parts.index("-", 6)
        except ValueError:
            continue
        if len(parts) < sep + 3:
            continue
        try:
            mounts.append(MountInfo(
                mount_id=int(parts[0]), parent_id=int(parts[1]), major_minor=parts[2],
                root=unescape(parts[3]), mount_point=unescape(parts[4]),
                options=_split_options(parts[5]), optional=tuple(parts[6:sep]),
                fstype=parts[sep + 1], source=unescape(parts[sep + 2]),
                super_options=_split_options(parts[sep + 3] if len(parts) > sep + 3 else ""),
            ))
        except ValueError:
            continue
    return mounts


def read_mounts(path: str | Path = "/proc/self/mountinfo") -> list[MountInfo]:
    """The current mount table of this process's mount namespace."""
    return parse_mountinfo(Path(path).read_text())


def _is_under(path: str, root: str) -> bool:
    root = root.rstrip("/") or "/"
    return path == root or path.startswith(root if root == "/" else root + "/")


def mounts_under(mounts: list[MountInfo], root: str | Path, fstype: str | None = None) -> list[MountInfo]:
    """Mounts whose mount point is ``root`` or below it (optionally of one ``fstype``),
    deepest first: the order in which they must be unmounted (pure)."""
    root_s = os.path.normpath(str(root))
    found = [m for m in mounts if _is_under(m.mount_point, root_s) and (fstype is None or m.fstype == fstype)]
    return sorted(found, key=lambda m: (m.mount_point.count("/"), m.mount_id), reverse=True)


def overlay_mounts_under(root: str | Path, mountinfo: str | Path = "/proc/self/mountinfo") -> list[MountInfo]:
    """Overlay mounts at or below ``root`` (e.g. the containers dir), deepest first."""
    return mounts_under(read_mounts(mountinfo), root, "overlay")


def is_mounted(path: str | Path, mountinfo: str | Path = "/proc/self/mountinfo") -> bool:
    """Whether ``path`` is a mount point in this mount namespace."""
    target = os.path.normpath(str(path))
    return any(m.mount_point == target for m in read_mounts(mountinfo))


def _umount2(target: bytes, flags: int) -> int:
    """umount2(2) through libc; returns 0 or the errno (ctypes imported lazily: it is slow)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(target, flags) == 0:
        return 0
    return ctypes.get_errno()


MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8


def mount_tmpfs(target: str | Path, data: str) -> None:
    """A tmpfs at ``target`` (nosuid, nodev, noexec as docker's /dev/shm; ``data`` its options,
    e.g. ``mode=1777,size=67108864``); ``RuntimeFailure`` with the kernel's reason."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"shm", os.fsencode(str(target)), b"tmpfs", ctypes.c_ulong(MS_NOSUID | MS_NODEV | MS_NOEXEC),
                  data.encode()) != 0:
        raise RuntimeFailure(f"cannot mount a tmpfs at {target}: {os.strerror(ctypes.get_errno())}")


def unmount(path: str | Path, lazy: bool = True) -> bool:
    """Unmount ``path`` (``MNT_DETACH`` when ``lazy``: the mount disappears now, the
    filesystem is released when its last user goes). Returns ``False`` when nothing was
    mounted there; ``RuntimeFailure`` with the kernel's reason otherwise."""
    target = os.fsencode(str(path))
    err = _umount2(target, MNT_DETACH if lazy else 0)
    if err == 0:
        return True
    if err in (errno.EINVAL, errno.ENOENT):
        return False  # not a mount point / no such path
    raise RuntimeFailure(f"cannot unmount {path}: {os.strerror(err)}")


def unmount_all_under(root: str | Path, fstype: str | None = None,
                      mountinfo: str | Path = "/proc/self/mountinfo") -> list[str]:
    """Lazily unmount every mount at or below ``root`` (of ``fstype`` if given), deepest
    first; returns the mount points unmounted."""
    done: list[str] = []
    for mount in mounts_under(read_mounts(mountinfo), root, fstype):
        if unmount(mount.mount_point, lazy=True):
            done.append(mount.mount_point)
    return done


class HostMounts:
    """The real mounts a container service is handed (``container.boundaries.Mounts``)."""

    def mount_overlay(self, target: Path, lowers: list[Path], upper: Path, work: Path, *,
                      layers_dir: Path | None = None, idmap: tuple[list[dict], list[dict]] | None = None) -> None:
        """An overlay at ``target`` (see :func:`dockerbank.host.overlay.mount_overlay`)."""
        from dockerbank.host.overlay import mount_overlay

        mount_overlay(target, lowers, upper, work, layers_dir=layers_dir, idmap=idmap)

    def unmount(self, path: str | Path, lazy: bool = True) -> bool:
        """See :func:`unmount`."""
        return unmount(path, lazy)

    def mount_tmpfs(self, target: str | Path, data: str) -> None:
        """See :func:`mount_tmpfs`."""
        mount_tmpfs(target, data)

    def is_mounted(self, path: str | Path) -> bool:
        """Whether a filesystem of its own is mounted at ``path`` (its device differs from its
        parent's, as for every overlay): two stats, where :func:`is_mounted` reads the whole
        mount table (every container's mount) at each start. A bind mount inside one
        filesystem is not seen; container roots are overlays."""
        return os.path.ismount(path)

    def overlay_mounts_under(self, root: str | Path) -> list[MountInfo]:
        """See :func:`overlay_mounts_under`."""
        return overlay_mounts_under(root)
