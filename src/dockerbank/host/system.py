"""Facts about the host for ``system info`` (and the API's ``GET /info``).

:func:`collect` reads ``/proc``, ``/sys``, ``/etc/os-release`` and the filesystem of the
root dir; everything else here is pure (parsers, warnings, the API dict, the text).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from dockerbank.host.cgroups import CgroupLayout, blkio_weight_available, detect_layout, swap_limit_available
from dockerbank.units import bytes_size

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import Any

#: statfs f_type magic -> Docker's name of the backing filesystem (moby fsutils).
FS_MAGIC = {
    0xEF53: "extfs", 0x58465342: "xfs", 0x9123683E: "btrfs", 0x01021994: "tmpfs",
    0x794C7630: "overlayfs", 0x2FC12FC1: "zfs", 0x6969: "nfs", 0x858458F6: "ramfs",
    0xF2F52010: "f2fs", 0x73717368: "squashfs", 0xF15F: "ecryptfs", 0x61756673: "aufs",
    0x65735546: "fuse", 0x5346544E: "ntfs", 0x4D44: "msdos", 0x3153464A: "jfs",
    0x52654973: "reiserfs", 0x012FF7B7: "coherent", 0x19830326: "fhgfs", 0x0BD00BD0: "lustre",
}


@dataclass
class SystemFacts:
    """What ``system info`` reports about the host and this installation."""

    kernel_version: str
    operating_system: str
    os_type: str
    architecture: str
    ncpu: int
    mem_total: int
    name: str
    root_dir: str
    cgroup_mode: str  # v1 | hybrid | v2
    cgroup_version: int
    cgroup_driver: str
    cgroup_controllers: list[str]
    runtimes: dict[str, str]  # name -> path of the binary
    default_runtime: str | None
    storage_driver: str
    backing_filesystem: str
    supports_d_type: bool
    overlay_supported: bool
    memory_limit: bool
    swap_limit: bool
    cpu_cfs: bool
    cpu_shares: bool
    pids_limit: bool
    blkio_weight: bool
    freezer: bool
    runtime_versions: dict[str, str] = field(default_factory=dict)
    rootless_limits: str = ""   # a rootless engine: what it can limit and why not (host/cgdelegation.py)


# ---------------------------------------------------------------- pure parts

def parse_os_release(text: str) -> str:
    """``PRETTY_NAME`` of ``/etc/os-release`` (Docker's "Operating System")."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"').strip("'")
    return values.get("PRETTY_NAME") or values.get("NAME") or "Linux"


def filesystem_name(magic: int) -> str:
    """Docker's name for a statfs magic number (``<unknown>`` otherwise)."""
    return FS_MAGIC.get(magic & 0xFFFFFFFF, "<unknown>")


def overlay_in_filesystems(proc_filesystems: str) -> bool:
    """Whether ``/proc/filesystems`` lists overlay."""
    return any(line.split()[-1] == "overlay" for line in proc_filesystems.splitlines() if line.split())


def parse_meminfo_total(text: str) -> int:
    """``MemTotal`` of ``/proc/meminfo`` in bytes."""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise ValueError("no MemTotal in /proc/meminfo")


def warnings(facts: SystemFacts) -> list[str]:
    """Docker-style ``WARNING:`` lines (printed to stderr by ``system info``)."""
    out = []
    if not facts.overlay_supported:
        out.append("WARNING: overlay filesystem not supported by the kernel: containers cannot start")
    if not facts.supports_d_type:
        out.append("WARNING: the backing filesystem does not support d_type; overlay needs it")
    if not facts.runtimes:
        out.append("WARNING: no OCI runtime (crun or runc) found in PATH")
    if facts.rootless_limits and facts.cgroup_driver == "none":   # dockerd's rootless warning, with our reason
        out.append(f"WARNING: Running in rootless-mode without cgroups: {facts.rootless_limits}")
    if not facts.memory_limit:
        out.append("WARNING: No memory limit support")
    if not facts.swap_limit:
        out.append("WARNING: No swap limit support")
    if not facts.cpu_cfs:
        out.append("WARNING: No cpu cfs quota support")
    if not facts.cpu_shares:
        out.append("WARNING: No cpu shares support")
    if not facts.pids_limit:
        out.append("WARNING: No pids limit support")
    if not facts.blkio_weight:
        out.append("WARNING: No blkio weight support")
    return out


def to_api(facts: SystemFacts) -> dict[str, Any]:
    """The subset of the Engine API ``/info`` object these facts answer (Docker's keys)."""
    return {
        "KernelVersion": facts.kernel_version,
        "OperatingSystem": facts.operating_system,
        "OSType": facts.os_type,
        "Architecture": facts.architecture,
        "NCPU": facts.ncpu,
        "MemTotal": facts.mem_total,
        "Name": facts.name,
        "DockerRootDir": facts.root_dir,
        "CgroupDriver": facts.cgroup_driver,
        "CgroupVersion": str(facts.cgroup_version),
        "Driver": facts.storage_driver,
        "DriverStatus": [["Backing Filesystem", facts.backing_filesystem],
                         ["Supports d_type", str(facts.supports_d_type).lower()],
                         ["Native Overlay Diff", "true"]],
        "Runtimes": {name: {"path": path} for name, path in facts.runtimes.items()},
        "DefaultRuntime": facts.default_runtime or "",
        "MemoryLimit": facts.memory_limit,
        "SwapLimit": facts.swap_limit,
        "CpuCfsQuota": facts.cpu_cfs,
        "CpuCfsPeriod": facts.cpu_cfs,
        "CPUShares": facts.cpu_shares,
        "PidsLimit": facts.pids_limit,
        "Warnings": warnings(facts),
    }


def render_info(facts: SystemFacts) -> list[str]:
    """The host part of ``docker info``'s Server section, one line each (no WARNINGs)."""
    lines = [
        f" Storage Driver: {facts.storage_driver}",
        f"  Backing Filesystem: {facts.backing_filesystem}",
        f"  Supports d_type: {str(facts.supports_d_type).lower()}",
        "  Native Overlay Diff: true",
        f" Cgroup Driver: {facts.cgroup_driver}",
        f" Cgroup Version: {facts.cgroup_version}",
        f" Runtimes: {' '.join(facts.runtimes) or '(none)'}",
        f" Default Runtime: {facts.default_runtime or '(none)'}",
    ]
    for name, version in facts.runtime_versions.items():
        lines.append(f" {name} version: {version}")
    lines += [
        f" Kernel Version: {facts.kernel_version}",
        f" Operating System: {facts.operating_system}",
        f" OSType: {facts.os_type}",
        f" Architecture: {facts.architecture}",
        f" CPUs: {facts.ncpu}",
        f" Total Memory: {bytes_size(facts.mem_total)}",
        f" Name: {facts.name}",
        f" Dockerbank Root Dir: {facts.root_dir}",
    ]
    return lines


# ---------------------------------------------------------------- reading the host

def _statfs_magic(path: str | Path) -> int:
    """``f_type`` of statfs(2) (the first field of ``struct statfs`` on Linux)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(256)
    if libc.statfs(os.fsencode(str(path)), buf) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(path))
    return ctypes.c_long.from_buffer(buf).value


def backing_filesystem(path: str | Path) -> str:
    """Docker's name of the filesystem holding ``path`` (its nearest existing parent)."""
    current = Path(path)
    while not current.exists() and current != current.parent:
        current = current.parent
    return filesystem_name(_statfs_magic(current))


def supports_d_type(path: str | Path) -> bool:
    """Whether readdir(3) on the filesystem of ``path`` fills ``d_type`` (overlay needs it;
    xfs formatted with ftype=0 does not). Checked with a scratch file like Docker."""
    current = Path(path)
    while not current.exists() and current != current.parent:
        current = current.parent
    import ctypes
    import tempfile

    class Dirent(ctypes.Structure):  # glibc's struct dirent on 64-bit Linux
        _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
                    ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
                    ("d_name", ctypes.c_char * 256)]

    libc = ctypes.CDLL(None, use_errno=True)
    libc.opendir.restype = ctypes.c_void_p
    libc.opendir.argtypes = [ctypes.c_char_p]
    libc.readdir.restype = ctypes.POINTER(Dirent)
    libc.readdir.argtypes = [ctypes.c_void_p]
    libc.closedir.argtypes = [ctypes.c_void_p]
    try:
        scratch = tempfile.mkdtemp(prefix=".d_type-", dir=current)
    except OSError:
        return True  # read-only: cannot tell; do not warn falsely
    try:
        Path(scratch, "f").touch()
        handle = libc.opendir(os.fsencode(scratch))
        if not handle:
            return True
        try:
            while True:
                entry = libc.readdir(handle)
                if not entry:
                    return False
                if entry.contents.d_name == b"f":
                    return entry.contents.d_type != 0  # DT_UNKNOWN
        finally:
            libc.closedir(handle)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def find_runtimes(names: tuple[str, ...] = ("crun", "runc")) -> dict[str, str]:
    """OCI runtimes found in ``PATH`` (name -> path), in order of preference."""
    found = {}
    for name in names:
        path = shutil.which(name)
        if path:
            found[name] = path
    return found


def runtime_version(path: str) -> str:
    """First line of ``<runtime> --version`` without the program name (``1.8``)."""
    try:
        out = subprocess.run([path, "--version"], check=False, capture_output=True, text=True,
                             timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    first = out.splitlines()[0] if out else ""
    return first.split("version", 1)[-1].strip() if "version" in first else first.strip()


def overlay_supported() -> bool:
    """Whether the kernel offers overlayfs (listed, or available as a module)."""
    try:
        if overlay_in_filesystems(Path("/proc/filesystems").read_text()):
            return True
    except OSError:
        pass
    modules = Path("/lib/modules") / os.uname().release / "kernel/fs/overlayfs"
    return modules.exists()


def collect(root_dir: str | Path, *, default_runtime: str | None = None,
            layout: CgroupLayout | None = None, with_versions: bool = True) -> SystemFacts:
    """Read the facts of this host for an installation rooted at ``root_dir``.

    ``default_runtime`` is the runtime the engine chose after probing (see DESIGN: crun
    preferred, runc when crun cannot run on this cgroup layout); when ``None`` the first
    runtime found is named.
    """
    layout = layout or detect_layout()
    runtimes = find_runtimes()
    try:
        os_name = parse_os_release(Path("/etc/os-release").read_text())
    except OSError:
        os_name = "Linux"
    v2 = layout.mode == "v2"
    cpu_dir = (layout.unified if v2 else layout.v1_mounts.get("cpu"))
    facts = SystemFacts(
        kernel_version=os.uname().release,
        operating_system=os_name,
        os_type="linux",
        architecture=os.uname().machine,
        ncpu=len(os.sched_getaffinity(0)),
        mem_total=parse_meminfo_total(Path("/proc/meminfo").read_text()),
        name=os.uname().nodename,
        root_dir=str(root_dir),
        cgroup_mode=layout.mode,
        cgroup_version=layout.version,
        cgroup_driver=layout.driver,
        cgroup_controllers=sorted(layout.controllers()),
        runtimes=runtimes,
        default_runtime=default_runtime or next(iter(runtimes), None),
        storage_driver="overlay2",
        backing_filesystem=backing_filesystem(root_dir),
        supports_d_type=supports_d_type(root_dir),
        overlay_supported=overlay_supported(),
        memory_limit=layout.has("memory"),
        swap_limit=swap_limit_available(layout),
        cpu_cfs=(layout.has("cpu") and (v2 or (cpu_dir is not None and (cpu_dir / "cpu.cfs_quota_us").exists()))),
        cpu_shares=layout.has("cpu"),
        pids_limit=layout.has("pids"),
        blkio_weight=blkio_weight_available(layout),
        freezer=layout.has("freezer"),
        runtime_versions={n: runtime_version(p) for n, p in runtimes.items()} if with_versions else {},
    )
    from dockerbank.host.rootless import rootless

    if rootless():
        from dockerbank.host.cgdelegation import current

        facts = rootless_facts(facts, current())
    return facts


def rootless_facts(facts: SystemFacts, delegation) -> SystemFacts:
    """``facts`` as a rootless engine sees them (pure): only the delegated controllers limit
    anything, and without any the cgroup driver is ``none`` (dockerd's rootless answer)."""
    from dataclasses import replace

    has = delegation.controllers
    return replace(facts, cgroup_driver=facts.cgroup_driver if has else "none",
                   rootless_limits=delegation.statement(),
                   memory_limit=facts.memory_limit and "memory" in has,
                   swap_limit=facts.swap_limit and "memory" in has, cpu_cfs=facts.cpu_cfs and "cpu" in has,
                   cpu_shares=facts.cpu_shares and "cpu" in has, pids_limit=facts.pids_limit and "pids" in has,
                   blkio_weight=facts.blkio_weight and "io" in has)
