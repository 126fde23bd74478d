"""``docker stats``: one resource sample of a container read from its cgroup and
``/proc``, Docker's CPU % between two samples, the table row and the Engine API JSON.

Reading (:func:`read_sample`) is separated from the pure parsers and formatters so
that the arithmetic is unit-tested against numbers taken from Docker itself.

The figures follow Docker exactly:

* CPU % = (container ns delta / host ns delta) x online CPUs x 100, the host time being
  the sum of the first seven ``cpu`` fields of ``/proc/stat`` (user..softirq) at 100 Hz;
* memory usage shown = usage - ``total_inactive_file`` (v1) or - ``inactive_file`` (v2);
  the limit of an unlimited container is the host's memory;
* network = sum over the container's interfaces except ``lo`` (Docker reports the
  interfaces it created, never loopback); a container sharing the host's network
  namespace has none;
* block I/O = sum of the Read / Write entries of the recursive service bytes (v1: the
  first non-empty of bfq, cfq, throttle like runc; v2: ``io.stat`` rbytes/wbytes).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dockerbank.errors import NotFound
from dockerbank.host.cgroups import Cgroup, parse_flat_keyed
from dockerbank.host.system import parse_meminfo_total
from dockerbank.units import bytes_size, human_size

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import Any

#: Linux's USER_HZ; ``/proc/stat`` is in these ticks on every architecture Docker supports.
CLOCK_TICKS = 100
NS_PER_S = 1_000_000_000

STATS_HEADERS = ("CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS")
#: Docker's default ``docker stats`` format (the keys of :func:`stats_row`).
DEFAULT_STATS_FORMAT = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}"
                        "\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}")
#: Header of each --format field (Docker's formatter names).
STATS_FIELD_HEADERS = {
    "Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
    "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}

_V1_UNLIMITED = 0x7FFFFFFFFFFFF000  # memory.limit_in_bytes of an unlimited v1 cgroup (page aligned)

NET_FIELDS = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped",
              "tx_bytes", "tx_packets", "tx_errors", "tx_dropped")


@dataclass(frozen=True)
class NetStats:
    """Counters of one network interface (the Engine API ``networks`` entry)."""

    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0


@dataclass(frozen=True)
class BlkioEntry:
    """One line of a service-bytes file: device, operation (Read/Write/...), bytes."""

    major: int
    minor: int
    op: str
    value: int


@dataclass
class StatsSample:
    """One reading of a container's resources at time ``read`` (UNIX seconds)."""

    read: float = 0.0
    cpu_total_ns: int = 0
    cpu_kernel_ns: int = 0
    cpu_user_ns: int = 0
    cpu_percpu_ns: list[int] = field(default_factory=list)
    throttling: tuple[int, int, int] = (0, 0, 0)  # periods, throttled periods, throttled ns
    system_cpu_ns: int = 0
    online_cpus: int = 0
    memory_usage: int = 0
    memory_max_usage: int = 0
    memory_limit: int = 0
    memory_failcnt: int = 0
    memory_stats: dict[str, int] = field(default_factory=dict)
    networks: dict[str, NetStats] = field(default_factory=dict)
    blkio: list[BlkioEntry] = field(default_factory=list)
    pids_current: int = 0
    pids_limit: int = 0  # 0 = unlimited
    cgroup_version: int = 1

    @property
    def memory_used(self) -> int:
        """Memory as ``docker stats`` shows it (usage minus inactive file cache)."""
        return memory_usage_no_cache(self.memory_usage, self.memory_stats)

    @property
    def net_rx(self) -> int:
        return sum(n.rx_bytes for n in self.networks.values())

    @property
    def net_tx(self) -> int:
        return sum(n.tx_bytes for n in self.networks.values())

    @property
    def blkio_read(self) -> int:
        return blkio_totals(self.blkio)[0]

    @property
    def blkio_write(self) -> int:
        return blkio_totals(self.blkio)[1]


# ---------------------------------------------------------------- pure parsers

def parse_proc_stat_cpu(text: str, clock_ticks: int = CLOCK_TICKS) -> int:
    """Host CPU time in ns from ``/proc/stat`` like dockerd: the first seven fields
    (user nice system idle iowait irq softirq) of the aggregate ``cpu`` line."""
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            if len(parts) < 8:
                raise ValueError("invalid number of cpu fields in /proc/stat")
            ticks = sum(int(value) for value in parts[1:8])
            return ticks * NS_PER_S // clock_ticks
    raise ValueError("no cpu line in /proc/stat")


def parse_net_dev(text: str, exclude: tuple[str, ...] = ("lo",)) -> dict[str, NetStats]:
    """Parse ``/proc/<pid>/net/dev`` into per-interface counters, skipping ``exclude``."""
    result: dict[str, NetStats] = {}
    for line in text.splitlines()[2:]:
        if ":" not in line:
            continue
        name, _, rest = line.partition(":")
        name = name.strip()
        values = rest.split()
        if name in exclude or len(values) < 16:
            continue
        v = [int(x) for x in values]
        result[name] = NetStats(v[0], v[1], v[2], v[3], v[8], v[9], v[10], v[11])
    return result


def parse_blkio_v1(text: str) -> list[BlkioEntry]:
    """Parse a v1 ``blkio.*io_service_bytes*`` file (``8:0 Read 4096`` lines; the
    ``Total`` line is dropped like runc does)."""
    entries: list[BlkioEntry] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue
        major, _, minor = parts[0].partition(":")
        entries.append(BlkioEntry(int(major), int(minor), parts[1], int(parts[2])))
    return entries


def parse_io_stat(text: str, keys: tuple[tuple[str, str], ...] = (("rbytes", "read"), ("wbytes", "write"))
                  ) -> list[BlkioEntry]:
    """Parse v2 ``io.stat`` (``8:0 rbytes=1 wbytes=2 rios=...``) into read/write entries,
    the shape dockerd reports on v2 (op ``read``/``write``); ``keys`` picks the counters (bytes by
    default, ``rios``/``wios`` for operations)."""
    entries: list[BlkioEntry] = []
    for line in text.splitlines():
        parts = line.split()
        if not parts or ":" not in parts[0]:
            continue
        major, _, minor = parts[0].partition(":")
        kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        for key, op in keys:
            if key in kv:
                entries.append(BlkioEntry(int(major), int(minor), op, int(kv[key])))
    return entries


def blkio_totals(entries: list[BlkioEntry]) -> tuple[int, int]:
    """(read bytes, write bytes) summed like the docker CLI (op starting with r/R, w/W)."""
    read = write = 0
    for entry in entries:
        if not entry.op:
            continue
        if entry.op[0] in "rR":
            read += entry.value
        elif entry.op[0] in "wW":
            write += entry.value
    return read, write


def memory_usage_no_cache(usage: int, stats: dict[str, int]) -> int:
    """Docker CLI's ``calculateMemUsageUnixNoCache``."""
    v1 = stats.get("total_inactive_file")
    if v1 is not None and v1 < usage:
        return usage - v1
    v2 = stats.get("inactive_file", 0)
    if v2 < usage:
        return usage - v2
    return usage


def clamp_memory_limit(limit: int, machine_memory: int) -> int:
    """dockerd reports the host's memory as the limit of an unlimited container."""
    if machine_memory > 0 and (limit <= 0 or limit > machine_memory):
        return machine_memory
    return limit


def parse_v2_max(text: str) -> int:
    """A v2 ``*.max`` value: ``max`` -> 0 (unlimited), else the number."""
    text = text.strip()
    return 0 if text in ("max", "") else int(text)


# ---------------------------------------------------------------- pure arithmetic

def cpu_percent(previous: StatsSample | None, current: StatsSample) -> float:
    """Docker's CPU % between two samples (``calculateCPUPercentUnix``); 0.0 for the
    first sample or when no time passed."""
    prev_cpu = previous.cpu_total_ns if previous else 0
    prev_sys = previous.system_cpu_ns if previous else 0
    cpu_delta = current.cpu_total_ns - prev_cpu
    system_delta = current.system_cpu_ns - prev_sys
    online = current.online_cpus or len(current.cpu_percpu_ns)
    if system_delta > 0 and cpu_delta > 0:
        return cpu_delta / system_delta * online * 100.0
    return 0.0


def memory_percent(sample: StatsSample) -> float:
    """Docker's MEM % (used without cache / limit x 100)."""
    if sample.memory_limit:
        return sample.memory_used / sample.memory_limit * 100.0
    return 0.0


def stats_row(container_id: str, name: str, current: StatsSample | None,
              previous: StatsSample | None = None, *, no_trunc: bool = False,
              container: str | None = None) -> dict[str, str]:
    """The fields of one ``docker stats`` row (keys usable in ``--format`` templates:
    Container, ID, Name, CPUPerc, MemUsage, MemPerc, NetIO, BlockIO, PIDs).

    ``current=None`` renders Docker's placeholders for a container whose stats could
    not be read (``--``); a stopped container (``stats -a``) is ``StatsSample()``, which
    renders like Docker: ``0.00%  0B / 0B  0.00%  0B / 0B  0B / 0B  0``.
    ``container`` is what the user named on the command line (Docker's ``.Container``),
    the short ID when the containers were listed.
    """
    short = container_id if no_trunc else container_id[:12]
    name = name.lstrip("/")
    if current is None:
        return {"Container": container or short, "ID": short, "Name": name or "--", "CPUPerc": "--",
                "MemUsage": "-- / --", "MemPerc": "--", "NetIO": "--", "BlockIO": "--", "PIDs": "--"}
    return {
        "Container": container or short,
        "ID": short,
        "Name": name,
        "CPUPerc": f"{cpu_percent(previous, current):.2f}%",
        "MemUsage": f"{bytes_size(current.memory_used)} / {bytes_size(current.memory_limit)}",
        "MemPerc": f"{memory_percent(current):.2f}%",
        "NetIO": f"{human_size(current.net_rx, 3)} / {human_size(current.net_tx, 3)}",
        "BlockIO": f"{human_size(current.blkio_read, 3)} / {human_size(current.blkio_write, 3)}",
        "PIDs": str(current.pids_current),
    }


def tabwrite(rows: list[list[str]], minwidth: int, padding: int = 3) -> str:
    """Go's ``text/tabwriter`` with ``(minwidth, tabwidth=1, padding, ' ', 0)`` for rows of
    equally many cells: every cell but the last of a line is padded to its column's
    width (widest cell + padding, at least ``minwidth``). Each line ends with ``\\n``."""
    widths: list[int] = []
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            width = max(minwidth, len(cell) + padding)
            if i < len(widths):
                widths[i] = max(widths[i], width)
            else:
                widths.append(width)
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("".join(cells) + (row[-1] if row else "") + "\n")
    return "".join(lines)


def render_stats_table(rows: list[dict[str, str]]) -> str:
    """The default ``docker stats`` table (header included), byte for byte like Docker."""
    keys = ("ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs")
    table = [list(STATS_HEADERS)] + [[row[k] for k in keys] for row in rows]
    return tabwrite(table, minwidth=10, padding=3)


def _rfc3339(ts: float) -> str:
    if ts <= 0:
        return "0001-01-01T00:00:00Z"
    dt = datetime.fromtimestamp(ts, tz=UTC)
    nanos = round((ts - int(ts)) * 1e9)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{nanos:09d}".rstrip("0").rstrip(".")) + "Z"


def _cpu_json(sample: StatsSample | None) -> dict[str, Any]:
    if sample is None:
        return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
    usage: dict[str, Any] = {"total_usage": sample.cpu_total_ns,
                             "usage_in_kernelmode": sample.cpu_kernel_ns,
                             "usage_in_usermode": sample.cpu_user_ns}
    if sample.cpu_percpu_ns:
        usage["percpu_usage"] = list(sample.cpu_percpu_ns)
    periods, throttled, throttled_ns = sample.throttling
    return {"cpu_usage": usage, "system_cpu_usage": sample.system_cpu_ns,
            "online_cpus": sample.online_cpus,
            "throttling_data": {"periods": periods, "throttled_periods": throttled,
                                "throttled_time": throttled_ns}}


def api_stats(container_id: str, name: str, current: StatsSample,
              previous: StatsSample | None = None) -> dict[str, Any]:
    """The Engine API ``GET /containers/{id}/stats`` object (one element of the stream)."""
    memory: dict[str, Any] = {"usage": current.memory_usage, "stats": dict(current.memory_stats),
                              "limit": current.memory_limit}
    if current.cgroup_version == 1:
        memory["max_usage"] = current.memory_max_usage
        if current.memory_failcnt:
            memory["failcnt"] = current.memory_failcnt
    result: dict[str, Any] = {
        "read": _rfc3339(current.read),
        "preread": _rfc3339(previous.read if previous else 0),
        "pids_stats": {"current": current.pids_current,
                       **({"limit": current.pids_limit} if current.pids_limit else {})},
        "blkio_stats": {
            "io_service_bytes_recursive": [
                {"major": e.major, "minor": e.minor, "op": e.op, "value": e.value} for e in current.blkio
            ],
            "io_serviced_recursive": [], "io_queue_recursive": [],
            "io_service_time_recursive": [], "io_wait_time_recursive": [],
            "io_merged_recursive": [], "io_time_recursive": [], "sectors_recursive": [],
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": _cpu_json(current),
        "precpu_stats": _cpu_json(previous),
        "memory_stats": memory,
        "name": "/" + name.lstrip("/"),
        "id": container_id,
    }
    if current.networks:
        result["networks"] = {
            iface: {key: getattr(counters, key) for key in NET_FIELDS}
            for iface, counters in current.networks.items()
        }
    return result


def _parse_rfc3339(text: str) -> float:
    if not text or text.startswith("0001-"):
        return 0.0
    main, _, frac = text.rstrip("Z").partition(".")
    base = datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    return base + (float("0." + frac) if frac else 0.0)


def samples_from_api(obj: dict[str, Any]) -> tuple[StatsSample | None, StatsSample]:
    """(previous, current) samples from an Engine API stats object (Docker's or ours),
    so a remote client renders rows with the same code (pure)."""

    def cpu(block: dict[str, Any], read: float) -> StatsSample:
        usage = block.get("cpu_usage") or {}
        thr = block.get("throttling_data") or {}
        return StatsSample(
            read=read, cpu_total_ns=usage.get("total_usage", 0),
            cpu_kernel_ns=usage.get("usage_in_kernelmode", 0), cpu_user_ns=usage.get("usage_in_usermode", 0),
            cpu_percpu_ns=list(usage.get("percpu_usage") or []),
            throttling=(thr.get("periods", 0), thr.get("throttled_periods", 0), thr.get("throttled_time", 0)),
            system_cpu_ns=block.get("system_cpu_usage", 0), online_cpus=block.get("online_cpus", 0))

    current = cpu(obj.get("cpu_stats") or {}, _parse_rfc3339(obj.get("read", "")))
    pre = obj.get("precpu_stats") or {}
    previous = cpu(pre, _parse_rfc3339(obj.get("preread", ""))) if pre.get("system_cpu_usage") else None
    memory = obj.get("memory_stats") or {}
    current.memory_usage = memory.get("usage", 0)
    current.memory_max_usage = memory.get("max_usage", 0)
    current.memory_limit = memory.get("limit", 0)
    current.memory_failcnt = memory.get("failcnt", 0)
    current.memory_stats = dict(memory.get("stats") or {})
    current.cgroup_version = 1 if "max_usage" in memory else 2
    current.networks = {name: NetStats(**{k: int(v.get(k, 0)) for k in NET_FIELDS})
                        for name, v in (obj.get("networks") or {}).items()}
    current.blkio = [BlkioEntry(e.get("major", 0), e.get("minor", 0), e.get("op", ""), e.get("value", 0))
                     for e in (obj.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []]
    pids = obj.get("pids_stats") or {}
    current.pids_current = pids.get("current", 0)
    current.pids_limit = pids.get("limit", 0)
    return previous, current


# ---------------------------------------------------------------- reading the host

def system_cpu_ns(proc_stat: str | Path = "/proc/stat") -> int:
    """Host CPU time in ns (see :func:`parse_proc_stat_cpu`)."""
    return parse_proc_stat_cpu(Path(proc_stat).read_text(), os.sysconf("SC_CLK_TCK"))


def online_cpus() -> int:
    """Online CPUs of the host (dockerd: ``sysconf(_SC_NPROCESSORS_ONLN)``)."""
    return int(os.sysconf("SC_NPROCESSORS_ONLN"))


def machine_memory() -> int:
    """The host's total memory in bytes."""
    return parse_meminfo_total(Path("/proc/meminfo").read_text())


def _read_int(cgroup: Cgroup, controller: str, filename: str, default: int = 0) -> int:
    try:
        return int(cgroup.read(controller, filename).strip() or default)
    except (NotFound, ValueError):
        return default


def _shares_host_netns(pid: int) -> bool:
    # The engine runs in the host's network namespace (no daemon in between), so its own
    # namespace stands for the host's (/proc/1 may be unreadable inside a sandbox).
    try:
        mine = os.stat("/proc/self/ns/net")
        theirs = os.stat(f"/proc/{pid}/ns/net")
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)


def read_network(init_pid: int | None) -> dict[str, NetStats]:
    """Interfaces (but ``lo``) of the network namespace of ``init_pid``; ``{}`` when the
    process is gone or shares the host's namespace (``--network host``/no netns)."""
    if not init_pid or _shares_host_netns(init_pid):
        return {}
    try:
        return parse_net_dev(Path(f"/proc/{init_pid}/net/dev").read_text())
    except OSError:
        return {}


def _read_cpu(cgroup: Cgroup, sample: StatsSample) -> None:
    if cgroup.layout.mode == "v2":
        stat = parse_flat_keyed(cgroup.read("cpu", "cpu.stat"))
        sample.cpu_total_ns = stat.get("usage_usec", 0) * 1000
        sample.cpu_user_ns = stat.get("user_usec", 0) * 1000
        sample.cpu_kernel_ns = stat.get("system_usec", 0) * 1000
        sample.throttling = (stat.get("nr_periods", 0), stat.get("nr_throttled", 0),
                             stat.get("throttled_usec", 0) * 1000)
        return
    sample.cpu_total_ns = _read_int(cgroup, "cpuacct", "cpuacct.usage")
    try:
        sample.cpu_percpu_ns = [int(x) for x in cgroup.read("cpuacct", "cpuacct.usage_percpu").split()]
    except NotFound:
        sample.cpu_percpu_ns = []
    try:
        # cpuacct.stat is in USER_HZ ticks; runc converts it to ns the same way.
        ticks = parse_flat_keyed(cgroup.read("cpuacct", "cpuacct.stat"))
        sample.cpu_user_ns = ticks.get("user", 0) * NS_PER_S // CLOCK_TICKS
        sample.cpu_kernel_ns = ticks.get("system", 0) * NS_PER_S // CLOCK_TICKS
    except NotFound:
        pass
    try:
        stat = parse_flat_keyed(cgroup.read("cpu", "cpu.stat"))
        sample.throttling = (stat.get("nr_periods", 0), stat.get("nr_throttled", 0),
                             stat.get("throttled_time", 0))
    except NotFound:
        pass


def _read_memory(cgroup: Cgroup, sample: StatsSample, host_memory: int) -> None:
    if cgroup.layout.mode == "v2":
        sample.memory_usage = _read_int(cgroup, "memory", "memory.current")
        try:
            limit = parse_v2_max(cgroup.read("memory", "memory.max"))
        except NotFound:
            limit = 0
        sample.memory_stats = parse_flat_keyed(cgroup.read("memory", "memory.stat"))
    else:
        sample.memory_usage = _read_int(cgroup, "memory", "memory.usage_in_bytes")
        sample.memory_max_usage = _read_int(cgroup, "memory", "memory.max_usage_in_bytes")
        sample.memory_failcnt = _read_int(cgroup, "memory", "memory.failcnt")
        limit = _read_int(cgroup, "memory", "memory.limit_in_bytes")
        if limit >= _V1_UNLIMITED:
            limit = 0
        sample.memory_stats = parse_flat_keyed(cgroup.read("memory", "memory.stat"))
    sample.memory_limit = clamp_memory_limit(limit, host_memory)


def _read_blkio(cgroup: Cgroup) -> list[BlkioEntry]:
    if cgroup.layout.mode == "v2":
        try:
            return parse_io_stat(cgroup.read("blkio", "io.stat"))
        except NotFound:
            return []
    # runc's order: bfq, cfq, throttle recursive, throttle; the first with entries wins.
    for filename in ("blkio.bfq.io_service_bytes_recursive", "blkio.io_service_bytes_recursive",
                     "blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_service_bytes"):
        try:
            entries = parse_blkio_v1(cgroup.read("blkio", filename))
        except NotFound:
            continue
        if entries:
            return entries
    return []


def read_sample(cgroup: Cgroup, init_pid: int | None = None, *,
                host_memory: int | None = None) -> StatsSample:
    """Read one :class:`StatsSample` of the container whose cgroup is ``cgroup`` and
    whose init process is ``init_pid`` (for the network counters).

    Raises ``NotFound`` when the cgroup does not exist (the container is not running).
    Controllers missing on the host leave their figures at 0.
    """
    if not cgroup.exists():
        raise NotFound(f"cgroup {cgroup.path} does not exist (is the container running?)")
    sample = StatsSample(read=time.time(), cgroup_version=cgroup.layout.version)
    sample.system_cpu_ns = system_cpu_ns()
    sample.online_cpus = online_cpus()
    if cgroup.layout.has("cpuacct") or cgroup.layout.mode == "v2":
        _read_cpu(cgroup, sample)
    if cgroup.layout.has("memory"):
        _read_memory(cgroup, sample, machine_memory() if host_memory is None else host_memory)
    if cgroup.layout.has("blkio"):
        sample.blkio = _read_blkio(cgroup)
    if cgroup.layout.has("pids"):
        sample.pids_current = _read_int(cgroup, "pids", "pids.current")
        try:
            text = cgroup.read("pids", "pids.max")
            sample.pids_limit = parse_v2_max(text)
        except (NotFound, ValueError):
            sample.pids_limit = 0
    sample.networks = read_network(init_pid)
    return sample
