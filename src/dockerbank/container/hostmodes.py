"""Docker's namespace and placement options of a container (pure): ``--pid``, ``--uts``,
``--cgroupns``, ``--isolation``, ``--cpuset-cpus/-mems``, ``--group-add``,
``--link``, ``--mac-address``.

Checked at ``create`` with dockerd's messages (so a bad value creates nothing) and turned into the
OCI spec's namespaces and resources at ``start`` (``--device-cgroup-rule`` and the namespaces
themselves are runtime.spec's: ``device_rule``, ``with_modes``). The host's facts (which CPUs exist, the pid of a
container whose namespace is joined, the image's /etc/group) are passed in.
"""

from __future__ import annotations

import re

from dockerbank.errors import InvalidArgument

_MAC = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")


def check_pid_mode(value: str) -> tuple[str, str | None]:
    """(kind, container reference) of a PidMode: ``""``/``host``/``container:REF`` (docker's Valid())."""
    if value in ("", "host"):
        return value, None
    kind, _, ref = value.partition(":")
    if kind == "container" and ref:
        return "container", ref
    raise InvalidArgument(f"invalid PID mode: {value}", exit_code=125)


def check_uts_mode(value: str, hostname_given: bool) -> str:
    if value not in ("", "host"):
        raise InvalidArgument(f"invalid UTS mode: {value}", exit_code=125)
    if value == "host" and hostname_given:
        raise InvalidArgument("Conflicting options: hostname and the UTS mode", exit_code=125)
    return value


def check_cgroupns_mode(value: str) -> str:
    if value not in ("", "host", "private"):
        raise InvalidArgument(f"invalid cgroup namespace mode: {value}", exit_code=125)
    return value


def check_isolation(value: str) -> str:
    """Linux has one isolation technology: ``default`` (Windows' ``process``/``hyperv`` are refused)."""
    if value.lower() not in ("", "default"):
        raise InvalidArgument(f'Invalid isolation: "{value}" - linux only supports \'default\'', exit_code=125)
    return value


def parse_cpuset(value: str) -> list[int]:
    """``0-2,4`` -> [0, 1, 2, 4]; InvalidArgument for anything else (docker's parsers.ParseUintList)."""
    result: set[int] = set()
    if not value:
        return []
    for part in value.split(","):
        low, dash, high = part.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise ValueError(f"invalid format: {value}")
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise ValueError(f"invalid format: {value}")
        result.update(range(first, last + 1))
    return sorted(result)


def check_cpuset(value: str, available: list[int], what: str) -> str:
    """``--cpuset-cpus``/``--cpuset-mems`` against what the host has (``what``: "cpus" or "mems")."""
    if not value:
        return ""
    try:
        wanted = parse_cpuset(value)
    except ValueError as exc:
        raise InvalidArgument(f"Invalid value {value} for cpuset {what}: {exc}", exit_code=125) from None
    missing = [n for n in wanted if n not in set(available)]
    if missing:
        label = "CPUs" if what == "cpus" else "memory nodes"
        raise InvalidArgument(f"Requested {label} are not available - requested {value}, available: "
                              f"{format_cpuset(available)}", exit_code=125)
    return value


def format_cpuset(numbers: list[int]) -> str:
    """[0, 1, 2, 4] -> ``0-2,4`` (the kernel's list format)."""
    parts: list[str] = []
    numbers = sorted(set(numbers))
    start = prev = None
    for n in [*numbers, None]:
        if n is not None and prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = n
    return ",".join(parts)


def check_mac(value: str) -> str:
    if value and not _MAC.match(value):
        raise InvalidArgument(f"invalid MAC address: {value}", exit_code=125)
    return value.lower().replace("-", ":")


def group_ids(groups: tuple[str, ...] | list[str], group_file: str) -> tuple[int, ...]:
    """``--group-add`` values (numbers, or names in the image's /etc/group) as gids (runc's rule)."""
    entries = [line.split(":") for line in group_file.splitlines() if line and not line.startswith("#")]
    gids = []
    for group in groups:
        match = next((e for e in entries if len(e) >= 3 and e[0] == group), None)
        if match is not None and match[2].isdigit():
            gids.append(int(match[2]))
        elif group.isdigit():
            gids.append(int(group))
        else:
            raise InvalidArgument(f"Unable to find group {group}: no matching entries in group file", exit_code=125)
    return tuple(dict.fromkeys(gids))


def parse_link(value: str) -> tuple[str, str]:
    """``--link NAME[:ALIAS]`` -> (name, alias)."""
    name, _, alias = value.partition(":")
    name = name.lstrip("/")
    if not name:
        raise InvalidArgument(f"invalid link: {value}", exit_code=125)
    return name, alias or name


# --- resources and kernel knobs: ShmSize, Ulimits, Sysctls, OomScoreAdj, CpuPeriod/Quota, MemoryReservation

ULIMIT_NAMES = ("as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
                "rss", "rtprio", "rttime", "sigpending", "stack")
# namespaced sysctls docker lets a container set (moby's validateSysctl / runc's whitelist)
_IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
                "kernel.shmmni", "kernel.shm_rmid_forced")


def parse_ulimit(text: str) -> dict:
    """``--ulimit nofile=1024[:2048]`` as docker's ``{"Name", "Soft", "Hard"}``."""
    name, eq, values = text.partition("=")
    if not eq:
        raise InvalidArgument(f"invalid ulimit argument: {text}", exit_code=125)
    soft, _, hard = values.partition(":")
    try:
        limit = {"Name": name, "Soft": int(soft), "Hard": int(hard or soft)}
    except ValueError:
        raise InvalidArgument(f"invalid ulimit argument: {text}", exit_code=125) from None
    return check_ulimits([limit])[0]


def check_ulimits(ulimits: list[dict]) -> list[dict]:
    for limit in ulimits:
        if limit.get("Name") not in ULIMIT_NAMES:
            raise InvalidArgument(f"invalid ulimit type: {limit.get('Name')}", exit_code=125)
        if int(limit.get("Soft") or 0) > int(limit.get("Hard") or 0) >= 0:
            raise InvalidArgument(f"ulimit soft limit must be less than or equal to hard limit: "
                                  f"{limit['Soft']} > {limit['Hard']}", exit_code=125)
    return [{"Name": u["Name"], "Soft": int(u.get("Soft") or 0), "Hard": int(u.get("Hard") or 0)} for u in ulimits]


def check_sysctls(sysctls: dict[str, str], network: str, ipc_mode: str) -> dict[str, str]:
    """Only sysctls of the container's own namespaces (IPC, network, fs.mqueue), as docker allows."""
    for key in sysctls:
        ipc = key in _IPC_SYSCTLS or key.startswith("fs.mqueue.")
        if not ipc and not key.startswith("net."):
            raise InvalidArgument(f"sysctl '{key}' is not whitelisted", exit_code=125)
        if key.startswith("net.") and network == "host":
            raise InvalidArgument(f"sysctl '{key}' not allowed in host network namespace", exit_code=125)
        if ipc and ipc_mode == "host":
            raise InvalidArgument(f"sysctl '{key}' not allowed in host IPC namespace", exit_code=125)
    return {str(k): str(v) for k, v in sysctls.items()}


def check_limits(*, oom_score_adj: int, cpu_period: int, cpu_quota: int, nano_cpus: int, memory: int,
                 memory_reservation: int, shm_size: int) -> None:
    """dockerd's checks of the plain numbers (messages as it gives them)."""
    if not -1000 <= oom_score_adj <= 1000:
        raise InvalidArgument(f"Invalid value {oom_score_adj}, range for oom score adj is [-1000, 1000]", exit_code=125)
    if nano_cpus and cpu_period:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set", exit_code=125)
    if nano_cpus and cpu_quota:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set", exit_code=125)
    if cpu_period and not 1000 <= cpu_period <= 1000000:
        raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s "
                              "(i.e. 1000000)", exit_code=125)
    if cpu_quota and 0 < cpu_quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)", exit_code=125)
    if memory_reservation and memory_reservation < 6 * 1024 * 1024:
        raise InvalidArgument("Minimum memory reservation allowed is 6MB", exit_code=125)
    if memory and memory_reservation and memory < memory_reservation:
        raise InvalidArgument("Minimum memory limit can not be less than memory reservation limit, see usage",
                              exit_code=125)
    if shm_size < 0:
        raise InvalidArgument("SHM size can not be less than 0", exit_code=125)


def check_ipc_mode(value: str) -> str:
    """IpcMode besides a pod's ``container:``: ``private``/``shareable`` (a private namespace),
    ``host``, ``none`` (no /dev/shm)."""
    if value in ("", "private"):
        return ""
    if value in ("host", "none", "shareable"):  # shareable: a private namespace others may join
        return value
    raise InvalidArgument(f"Invalid IPC mode: {value}", exit_code=125)  # docker's capital
