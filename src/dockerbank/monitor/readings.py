"""What one scrape reads: per container (the numbers ``stats`` reads, plus OOM events, processes
and block I/O operations), per host (counts, sizes, free space) — as plain data.

Reading happens here; turning readings into metrics is pure (:mod:`dockerbank.monitor.families`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from dockerbank.container.stats import BlkioEntry, StatsSample, parse_blkio_v1, read_sample
from dockerbank.errors import DockerbankError, NotFound
from dockerbank.host.cgroups import Cgroup, CgroupLayout, parse_flat_keyed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


@dataclass
class ContainerReading:
    """One container at one scrape. ``sample`` is ``None`` when it has no cgroup (not running)."""

    id: str
    name: str
    image: str
    labels: dict[str, str]
    status: str
    cgroup_path: str
    restart_count: int = 0
    exit_code: int = 0
    oom_killed: bool = False
    health: str | None = None         # starting | healthy | unhealthy; None without a healthcheck
    started_at: float = 0.0           # UNIX seconds, 0 when never started
    memory_limit: int = 0             # the configured limit (0 = unlimited, cAdvisor's spec)
    nano_cpus: int = 0
    cpu_shares: int = 0
    sample: StatsSample | None = None
    oom_events: int = 0
    failcnt: int = 0
    processes: int = 0
    io_ops: list[BlkioEntry] = field(default_factory=list)   # op "read"/"write": operations
    log_shipping: dict | None = None  # a remote log driver's counters: {"driver", "sent", "lost"}


@dataclass
class Filesystem:
    """Space of the filesystem holding ``path`` (``role``: root or backup)."""

    role: str
    path: str
    size: int
    avail: int
    free: int


@dataclass
class ImageReading:
    id: str
    name: str         # first tag, or "<none>"
    size: int


@dataclass
class VolumeReading:
    name: str
    created: float    # UNIX seconds
    size: int | None  # None when it could not be measured
    anonymous: bool = False


@dataclass
class HostReading:
    images: list[ImageReading] = field(default_factory=list)
    volumes: list[VolumeReading] = field(default_factory=list)
    filesystems: list[Filesystem] = field(default_factory=list)
    cpu_cores: int = 0
    memory_bytes: int = 0


# ---------------------------------------------------------------- pure helpers

def parse_rfc3339(text: str) -> float:
    """UNIX seconds of an RFC 3339 time as Dockerbank writes it (``0.0`` for Docker's zero time)."""
    from datetime import UTC, datetime

    if not text or text.startswith("0001-"):
        return 0.0
    main, _, rest = text.rstrip("Z").partition(".")
    frac = ""
    for ch in rest:
        if not ch.isdigit():
            break
        frac += ch
    base = datetime.strptime(main[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    return base + (float("0." + frac) if frac else 0.0)


def parse_io_ops_v2(text: str) -> list[BlkioEntry]:
    """Operations per device from v2 ``io.stat`` (``rios``/``wios``) as read/write entries."""
    from dockerbank.container.stats import parse_io_stat

    return parse_io_stat(text, (("rios", "read"), ("wios", "write")))


def health_status(state) -> str | None:
    """The health status of a container state (``{"Status": ...}`` or an object with ``status``)."""
    health = getattr(state, "health", None)
    if not health:
        return None
    status = health.get("Status") if isinstance(health, dict) else getattr(health, "status", None)
    return status or None


# ---------------------------------------------------------------- reading

def _io_ops(cgroup: Cgroup) -> list[BlkioEntry]:
    if cgroup.layout.mode == "v2":
        try:
            return parse_io_ops_v2(cgroup.read("blkio", "io.stat"))
        except NotFound:
            return []
    for filename in ("blkio.io_serviced_recursive", "blkio.throttle.io_serviced_recursive",
                     "blkio.throttle.io_serviced"):
        try:
            entries = parse_blkio_v1(cgroup.read("blkio", filename))
        except NotFound:
            continue
        if entries:
            return [BlkioEntry(e.major, e.minor, e.op.lower(), e.value) for e in entries
                    if e.op.lower() in ("read", "write")]
    return []


def _memory_events(cgroup: Cgroup, sample: StatsSample) -> tuple[int, int]:
    """(OOM kills, failcnt): v1 ``memory.oom_control``/``memory.failcnt``, v2 ``memory.events``
    (``oom_kill``; ``max`` is cAdvisor's failcnt on v2)."""
    from dockerbank.container.oom import oom_info, parse_oom_v2

    try:
        if cgroup.layout.mode == "v2":
            text = cgroup.read("memory", "memory.events")
            return parse_oom_v2(text).oom_kills, parse_flat_keyed(text).get("max", 0)
        return oom_info(cgroup).oom_kills, sample.memory_failcnt
    except NotFound:
        return 0, sample.memory_failcnt


def read_container(container, layout: CgroupLayout, cgroup_path: str, *,
                   host_memory: int | None = None, bundle: Path | None = None) -> ContainerReading:
    """Read one container: its engine state always, its cgroup's figures when it has one, and
    the counters of its log shipper (``bundle``: its directory) when its log driver is remote."""
    from dockerbank.container.model import ACTIVE

    cfg, state = container.config, container.state
    reading = ContainerReading(
        id=container.id, name=container.name, image=cfg.image, labels=dict(cfg.labels or {}),
        status=state.status, cgroup_path=cgroup_path, restart_count=state.restart_count,
        exit_code=state.exit_code, oom_killed=state.oom_killed, health=health_status(state),
        started_at=parse_rfc3339(state.started_at), memory_limit=cfg.memory, nano_cpus=cfg.nano_cpus,
        cpu_shares=cfg.cpu_shares)
    if bundle is not None and (getattr(cfg, "log_config", None) or {}).get("Type") in ("syslog", "gelf"):
        from dockerbank.container.logship import read_stats

        reading.log_shipping = read_stats(bundle) or {"driver": cfg.log_config["Type"], "sent": 0, "lost": 0}
    if state.status not in ACTIVE:
        return reading
    cgroup = Cgroup(layout, cgroup_path)
    try:
        sample = read_sample(cgroup, state.pid, host_memory=host_memory)
    except (DockerbankError, OSError):
        return reading  # it stopped between the listing and the read
    reading.sample = sample
    reading.oom_events, reading.failcnt = _memory_events(cgroup, sample)
    reading.processes = len(cgroup.pids())
    if layout.has("blkio"):
        reading.io_ops = _io_ops(cgroup)
    return reading


def filesystem(role: str, path: Path) -> Filesystem | None:
    """Space of the filesystem of ``path`` (its nearest existing parent), ``None`` if unreadable."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        st = os.statvfs(probe)
    except OSError:
        return None
    return Filesystem(role, str(path), st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize,
                      st.f_bfree * st.f_frsize)


class DeviceNames:
    """``major:minor`` -> ``/dev/<name>`` as cAdvisor labels block devices (cached: devices rarely change)."""

    def __init__(self, sys_dev_block: Path = Path("/sys/dev/block")):
        self.base = sys_dev_block
        self._names: dict[tuple[int, int], str] = {}

    def __call__(self, major: int, minor: int) -> str:
        key = (major, minor)
        if key not in self._names:
            try:
                self._names[key] = "/dev/" + os.path.basename(os.readlink(self.base / f"{major}:{minor}"))
            except OSError:
                self._names[key] = f"{major}:{minor}"
        return self._names[key]


class SizeCache:
    """Sizes that cost a tree walk (volumes), re-measured at most every ``ttl`` seconds — cAdvisor
    also measures filesystem usage in the background, not per scrape."""

    def __init__(self, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[str, tuple[float, int | None]] = {}

    def get(self, key: str, measure: Callable[[], int]) -> int | None:
        now = self.clock()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        try:
            value: int | None = measure()
        except (DockerbankError, OSError):
            value = None
        self._cache[key] = (now, value)
        return value

    def keep_only(self, keys: set[str]) -> None:
        """Forget what no longer exists (removed volumes)."""
        for key in list(self._cache):
            if key not in keys:
                del self._cache[key]
