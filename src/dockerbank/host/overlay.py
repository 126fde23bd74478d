"""Mount an overlay filesystem without touching process-wide state (no ``chdir``).

The classic ``mount(2)`` takes every option in one string of at most a page (4096 bytes), so an
image with many layers and long absolute paths does not fit; the old work-around was to
``chdir`` into the layers directory and pass relative lowerdirs, which changes the working
directory of every thread of the process (the API service's too). Three roads, fastest first:

1. The new mount API (Linux >= 6.8 for ``lowerdir+``): ``fsopen("overlay")``, one
   ``fsconfig(FSCONFIG_SET_STRING, "lowerdir+", path)`` per layer (no length limit on the
   layer count), ``fsmount`` and ``move_mount`` onto the target.
2. Older kernels: ``mount(2)`` with absolute paths in one option string when it fits a page.
3. Otherwise a child process made for it (``cwd=`` the layers directory, relative lowerdirs).
"""

from __future__ import annotations

import errno
import os
import platform
from pathlib import Path

from dockerbank.errors import RuntimeFailure

# The syscalls added since Linux 5.2 share one number on every architecture but alpha (+110).
_NEW_MOUNT_API = {"move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432}
_ARCHES = ("x86_64", "aarch64", "arm64", "armv7l", "armv6l", "i686", "i386", "riscv64", "ppc64le", "ppc64",
           "s390x", "loongarch64", "mips64", "mips")
FSOPEN_CLOEXEC = 0x1
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
FSMOUNT_CLOEXEC = 0x1
MOVE_MOUNT_F_EMPTY_PATH = 0x4
AT_FDCWD = -100
PAGE_LIMIT = 4096  # mount(2) copies at most one page of options, the NUL included

_new_api_works: bool | None = None  # learnt at the first mount: ENOSYS / no ``lowerdir+`` -> False


def kernel_has_lowerdir_plus(release: str) -> bool:
    """overlay takes ``lowerdir+`` since Linux 6.8 (older ones parse it as a legacy option string)."""
    parts = release.split(".")
    try:
        major, minor = int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        return False
    return (major, minor) >= (6, 8)


def _syscall_numbers() -> dict[str, int] | None:
    if not kernel_has_lowerdir_plus(os.uname().release):
        return None
    machine = platform.machine()
    if machine == "alpha":
        return {name: nr + 110 for name, nr in _NEW_MOUNT_API.items()}
    return dict(_NEW_MOUNT_API) if machine in _ARCHES else None


def options_string(lowers: list[str], upper: str, work: str) -> str:
    """The classic option string (pure): lowerdir top layer first."""
    return f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"


class _NoNewApi(Exception):
    """The kernel lacks fsopen or overlay's ``lowerdir+``: use the classic road."""


def _kernel_message(fd: int) -> str:
    """The error the filesystem logged on its fs context (``e overlay: ...``), if any."""
    lines = []
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:  # ENODATA: no more messages
            break
        if not chunk:
            break
        lines.append(chunk.decode(errors="replace").rstrip("\n"))
    return "; ".join(line[2:] if line[1:2] == " " else line for line in lines)


def _mount_new_api(target: str, lowers: list[str], upper: str, work: str) -> None:
    import ctypes

    numbers = _syscall_numbers()
    if numbers is None:
        raise _NoNewApi()
    libc = ctypes.CDLL(None, use_errno=True)
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    c_long, c_char_p = ctypes.c_long, ctypes.c_char_p

    fsfd = syscall(c_long(numbers["fsopen"]), c_char_p(b"overlay"), c_long(FSOPEN_CLOEXEC))
    if fsfd < 0:
        err = ctypes.get_errno()
        if err == errno.ENOSYS:
            raise _NoNewApi()
        raise RuntimeFailure(f"cannot mount the container's root filesystem: fsopen(overlay): {os.strerror(err)}")
    try:
        def config(key: str, value: str) -> None:
            if syscall(c_long(numbers["fsconfig"]), c_long(fsfd), c_long(FSCONFIG_SET_STRING),
                       c_char_p(key.encode()), c_char_p(os.fsencode(value)), c_long(0)) < 0:
                err = ctypes.get_errno()
                message = _kernel_message(fsfd)
                if key == "lowerdir+" and err == errno.EINVAL and "lowerdir+" in message:
                    raise _NoNewApi()  # before 6.8 overlay knows no "lowerdir+"
                raise RuntimeFailure(f"cannot mount the container's root filesystem: {key}={value}: "
                                     f"{message or os.strerror(err)}")

        for lower in lowers:
            config("lowerdir+", lower)
        config("upperdir", upper)
        config("workdir", work)
        if syscall(c_long(numbers["fsconfig"]), c_long(fsfd), c_long(FSCONFIG_CMD_CREATE), None, None,
                   c_long(0)) < 0:
            err = ctypes.get_errno()
            raise RuntimeFailure("cannot mount the container's root filesystem: "
                                 f"{_kernel_message(fsfd) or os.strerror(err)}")
        mntfd = syscall(c_long(numbers["fsmount"]), c_long(fsfd), c_long(FSMOUNT_CLOEXEC), c_long(0))
        if mntfd < 0:
            err = ctypes.get_errno()
            raise RuntimeFailure(f"cannot mount the container's root filesystem: fsmount: {os.strerror(err)}")
    finally:
        os.close(fsfd)
    try:
        if syscall(c_long(numbers["move_mount"]), c_long(mntfd), c_char_p(b""), c_long(AT_FDCWD),
                   c_char_p(os.fsencode(target)), c_long(MOVE_MOUNT_F_EMPTY_PATH)) < 0:
            err = ctypes.get_errno()
            raise RuntimeFailure(f"cannot mount the container's root filesystem on {target}: {os.strerror(err)}")
    finally:
        os.close(mntfd)


def _mount_classic(target: str, data: str) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"overlay", os.fsencode(target), b"overlay", ctypes.c_ulong(0), data.encode()) != 0:
        err = ctypes.get_errno()
        raise RuntimeFailure(f"cannot mount the container's root filesystem: {os.strerror(err)}")


_CHILD = """\
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.mount(b"overlay", os.fsencode(sys.argv[1]), b"overlay", ctypes.c_ulong(0), sys.argv[2].encode()) != 0:
    sys.stderr.write(os.strerror(ctypes.get_errno()))
    sys.exit(1)
"""


def _mount_in_child(target: str, data: str, cwd: Path) -> None:
    """Relative lowerdirs resolved in a child's working directory (the parent's stays as is)."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", _CHILD, target, data], cwd=str(cwd), capture_output=True,
                            stdin=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        reason = result.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["unknown error"]
        raise RuntimeFailure(f"cannot mount the container's root filesystem: {reason[0]}")


def mount_overlay(target: Path, lowers: list[Path], upper: Path, work: Path, *, layers_dir: Path | None = None,
                  idmap: tuple[list[dict], list[dict]] | None = None) -> None:
    """Mount an overlay at ``target``: ``lowers`` top layer first, ``upper``/``work`` on top.

    ``layers_dir``: where most lowers live; only the last-resort child process uses it (its
    working directory, so the lowerdirs it passes are short relative paths).
    ``idmap``: (uid, gid) OCI mappings of a user-namespaced container: every lower is mounted
    through an ID-mapped clone of itself (:mod:`dockerbank.host.idmap`), so the container's root
    owns the image's root files while the layers stay shared and unchanged on disk.
    """
    if idmap is None:
        _mount(target, [str(p) for p in lowers], upper, work, layers_dir)
        return
    from dockerbank.host.idmap import idmapped_clone, userns_fd

    ns = userns_fd(*idmap)
    fds: list[int] = []
    try:
        for lower in lowers:
            fds.append(idmapped_clone(str(lower), ns))
        # the overlay holds its own references to the clones: the fds may close right after
        _mount(target, [f"/proc/self/fd/{fd}" for fd in fds], upper, work, None)
    finally:
        for fd in fds:
            os.close(fd)
        os.close(ns)


def _mount(target: Path, absolute: list[str], upper: Path, work: Path, layers_dir: Path | None) -> None:
    global _new_api_works
    lowers = [Path(p) for p in absolute]
    if _new_api_works is not False:
        try:
            _mount_new_api(str(target), absolute, str(upper), str(work))
            _new_api_works = True
            return
        except _NoNewApi:
            _new_api_works = False
    data = options_string(absolute, str(upper), str(work))
    if len(data) < PAGE_LIMIT:
        _mount_classic(str(target), data)
        return
    if layers_dir is None:
        raise RuntimeFailure(f"too many layers for one overlay mount ({len(lowers)})")
    relative = options_string([os.path.relpath(p, layers_dir) for p in lowers], str(upper), str(work))
    if len(relative) >= PAGE_LIMIT:
        raise RuntimeFailure(f"too many layers for one overlay mount ({len(lowers)})")
    _mount_in_child(str(target), relative, layers_dir)
