"""The host's figures for the overview: CPU load, memory, free space of the root and of the
backup repository. Parsing is pure (tested with strings); ``read`` does the reading."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Disk:
    """Space of one filesystem, in bytes."""

    what: str          # "root" | "backups"
    path: str
    total: int
    free: int

    @property
    def used_percent(self) -> float:
        return 100.0 * (self.total - self.free) / self.total if self.total else 0.0


@dataclass
class HostFigures:
    cpus: int
    load1: float
    mem_total: int
    mem_available: int
    disks: list[Disk]
    problems: list[str]      # what could not be read, said plainly

    @property
    def load_percent(self) -> float:
        """The one-minute load as a share of the CPUs (100 %: every CPU busy)."""
        return 100.0 * self.load1 / self.cpus if self.cpus else 0.0

    @property
    def mem_used_percent(self) -> float:
        return 100.0 * (self.mem_total - self.mem_available) / self.mem_total if self.mem_total else 0.0


def parse_loadavg(text: str) -> float:
    """The one-minute load average from ``/proc/loadavg``."""
    return float(text.split()[0])


def parse_meminfo(text: str) -> tuple[int, int]:
    """(total, available) in bytes from ``/proc/meminfo``."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return values.get("MemTotal", 0), values.get("MemAvailable", values.get("MemFree", 0))


def disk_of(what: str, path: Path) -> Disk:
    """The filesystem holding ``path`` (its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    st = os.statvfs(probe)
    return Disk(what, str(path), st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize)


def read(root: Path, backup_repo: str | None, proc: Path = Path("/proc")) -> HostFigures:
    """Read the figures now; what cannot be read is named in ``problems``, never raised."""
    problems: list[str] = []
    load1, mem_total, mem_available = 0.0, 0, 0
    try:
        load1 = parse_loadavg((proc / "loadavg").read_text())
    except (OSError, ValueError, IndexError) as exc:
        problems.append(f"load average: {exc}")
    try:
        mem_total, mem_available = parse_meminfo((proc / "meminfo").read_text())
    except OSError as exc:
        problems.append(f"memory: {exc}")
    disks = []
    places = [("root", root)]
    if backup_repo and "://" not in backup_repo:  # a local repository; remote ones have no local disk
        places.append(("backups", Path(backup_repo.removeprefix("file:"))))
    for what, path in places:
        try:
            disks.append(disk_of(what, path))
        except OSError as exc:
            problems.append(f"disk of the {what} {path}: {exc.strerror or exc}")
    return HostFigures(os.cpu_count() or 1, load1, mem_total, mem_available, disks, problems)
