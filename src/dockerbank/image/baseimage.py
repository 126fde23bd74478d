"""Base images made on this host, since nothing can be pulled: busybox-static and Debian.

The busybox rootfs tar is built deterministically (fixed mtimes, sorted entries), so the
same busybox binary always gives the same image ID.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from dockerbank.errors import DockerbankError, NotFound

BUSYBOX = "/bin/busybox"
EPOCH = 0

_PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
_GROUP = "root:x:0:\nnogroup:x:65534:\n"


def _add_dir(archive: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    info.mtime = EPOCH
    archive.addfile(info)


def _add_file(archive: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = EPOCH
    archive.addfile(info, io.BytesIO(data))


def busybox_rootfs_tar(out: Path, busybox: str = BUSYBOX) -> Path:
    """Write a minimal rootfs tar (busybox-static plus an applet link per command) to ``out``."""
    if not os.path.exists(busybox):
        raise NotFound(f"{busybox} not found: install Debian's busybox-static")
    applets = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    data = Path(busybox).read_bytes()
    dirs = ["bin", "dev", "etc", "home", "proc", "root", "sbin", "sys", "tmp", "usr", "usr/bin", "usr/sbin", "var",
            "var/tmp", "var/log", "run"]
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as archive:
        for name in dirs:
            _add_dir(archive, name, 0o1777 if name in ("tmp", "var/tmp") else 0o755)
        _add_file(archive, "bin/busybox", data, 0o755)
        _add_file(archive, "etc/passwd", _PASSWD.encode())
        _add_file(archive, "etc/group", _GROUP.encode())
        for applet in sorted(set(applets)):
            if applet in ("bin/busybox",) or "/" not in applet:
                continue
            info = tarfile.TarInfo(applet)
            info.type = tarfile.SYMTYPE
            info.linkname = "/bin/busybox"
            info.mtime = EPOCH
            info.mode = 0o777
            archive.addfile(info)
    return out


def debian_rootfs_tar(out: Path, suite: str = "bookworm", mirror: str | None = None) -> Path:
    """Build a Debian minbase rootfs with debootstrap and pack it into ``out`` (slow: minutes)."""
    if shutil.which("debootstrap") is None:
        raise NotFound("debootstrap not found: install Debian's debootstrap")
    mirror = mirror or _apt_mirror()
    work = Path(tempfile.mkdtemp(prefix="debootstrap-"))
    try:
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", suite, str(work / "rootfs"), mirror],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
            raise DockerbankError(f"debootstrap failed: {' '.join(tail)}")
        rootfs = work / "rootfs"
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / leftover).glob("*"):
                if entry.is_file():
                    entry.unlink()
        tmp_out = out.with_suffix(".partial")
        subprocess.run(["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(tmp_out), "."], check=True)
        os.rename(tmp_out, out)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _apt_mirror() -> str:
    """The Debian mirror apt already uses on this host (offline users have a local one)."""
    candidates = [Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")]
    for path in candidates:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            line = line.strip()
            if line.startswith("URIs:"):
                return line.split()[1]
            if line.startswith("deb ") and "security" not in line:
                return line.split()[1]
    return "http://deb.debian.org/debian"
