"""The OCI runtime ``config.json`` of a container, built by a pure function.

Everything the host decides (hard rlimits, which cgroup knobs exist, the user's uid/gid
found in the image's /etc/passwd, the network namespace, extra mounts) is passed in, so
unit tests cover every option without touching the host. Defaults follow Docker 20.10
(moby ``oci/defaults.go``, ``daemon/oci_linux.go``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dockerbank.errors import InvalidArgument
from dockerbank.runtime import seccomp_default as sd

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import Any

DEFAULT_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

ALL_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)

MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# Docker's default device cgroup rules (moby oci/devices_linux.go + defaults)
DEFAULT_DEVICE_RULES = (
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: RLIMIT_NOFILE containerd gives every container; clamped to the host's hard limit.
DEFAULT_NOFILE = 1048576


@dataclass(frozen=True)
class Device:
    """A host device node to create in the container (``--device``), already stat'ed by the caller."""

    path: str            # in the container
    type: str            # "c" or "b"
    major: int
    minor: int
    file_mode: int = 0o666
    uid: int = 0
    gid: int = 0
    permissions: str = "rwm"


@dataclass
class SpecInputs:
    """What the host decided for this container (the impure facts, gathered by the caller)."""

    rootfs: str
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    hard_limits: dict[str, int] = field(default_factory=dict)    # "RLIMIT_NOFILE" -> host hard limit
    cgroups_path: str | None = None
    netns: dict[str, Any] | None = field(default_factory=lambda: {"type": "network"})  # None: host's
    mounts: list[dict] = field(default_factory=list)   # volumes, binds, tmpfs (OCI mount dicts)
    etc_files: dict[str, str] = field(default_factory=dict)  # "/etc/hosts" -> host path of the file
    devices: list[Device] = field(default_factory=list)
    has_swap_limit: bool = True
    has_blkio_weight: bool = True
    goarch: str = "amd64"
    kernel: tuple[int, int] = (5, 10)
    uid_mappings: list[dict] = field(default_factory=list)   # rootless later: [{containerID, hostID, size}]
    gid_mappings: list[dict] = field(default_factory=list)
    init_path: str | None = None           # host path of tini/docker-init for --init
    host_caps: tuple[str, ...] | None = None   # the host's bounding set: caps beyond it make capset fail
    privileged_devices: list[Device] = field(default_factory=list)
    pidns: dict[str, Any] | None = field(default_factory=lambda: {"type": "pid"})  # None: the host's (--pid)
    own_uts: bool = True           # False: the host's UTS namespace (--uts host)
    cgroupns: bool = False         # a private cgroup namespace (--cgroupns private)
    # namespaces joined rather than made ("ipc"/"uts"/"pid" -> /proc/<pid>/ns/<kind>): a pod's members
    joined_namespaces: dict[str, str] = field(default_factory=dict)


def normalize_cap(name: str) -> str:
    """``net_admin`` / ``NET_ADMIN`` / ``CAP_NET_ADMIN`` -> ``CAP_NET_ADMIN``; ``ALL`` stays ``ALL``."""
    upper = name.strip().upper()
    if upper == "ALL":
        return upper
    cap = upper if upper.startswith("CAP_") else f"CAP_{upper}"
    if cap not in ALL_CAPS:
        raise InvalidArgument(f"invalid capability: {name}", exit_code=125)
    return cap


def capabilities(cap_add: list[str], cap_drop: list[str], privileged: bool) -> list[str]:
    """Docker's rule: start from the defaults (all when privileged), add, then drop; ALL works both ways."""
    if privileged:
        return list(ALL_CAPS)
    adds = [normalize_cap(c) for c in cap_add]
    drops = [normalize_cap(c) for c in cap_drop]
    caps = list(DEFAULT_CAPS)
    if "ALL" in drops:
        caps = []
    if "ALL" in adds:
        caps = list(ALL_CAPS)
    else:
        caps += [c for c in adds if c not in caps]
    if "ALL" not in drops:
        caps = [c for c in caps if c not in drops]
    else:
        caps = [c for c in adds if c != "ALL"] if "ALL" not in adds else caps
    return caps


def caps_of_mask(mask: int) -> tuple[str, ...]:
    """Capability names of a ``CapBnd`` bit mask (/proc/self/status), in kernel order."""
    order = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
             "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
             "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
             "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
             "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
             "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
             "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
             "CAP_CHECKPOINT_RESTORE"]
    return tuple(name for bit, name in enumerate(order) if mask >> bit & 1)


def _arch_names(goarch: str) -> list[str]:
    native = sd.GOARCH_TO_SCMP.get(goarch)
    if native is None:
        return []
    return [native, *sd.ARCH_MAP.get(native, ())]


_ARCH_ALIASES = {"amd64": ("amd64", "x86_64"), "arm64": ("arm64", "aarch64")}


def seccomp_for(caps: list[str], goarch: str = "amd64", kernel: tuple[int, int] = (5, 10)) -> dict[str, Any]:
    """Docker's default profile for a container with ``caps`` on ``goarch`` (moby setupSeccomp)."""
    arch_names = _ARCH_ALIASES.get(goarch, (goarch,))
    capset = set(caps)

    def applies(rule: dict) -> bool:
        inc, exc = rule.get("includes", {}), rule.get("excludes", {})
        if inc.get("arches") and not any(a in inc["arches"] for a in arch_names):
            return False
        if inc.get("caps") and not all(c in capset for c in inc["caps"]):
            return False
        if inc.get("minKernel"):
            major, minor = (int(x) for x in inc["minKernel"].split(".")[:2])
            if kernel < (major, minor):
                return False
        if exc.get("arches") and any(a in exc["arches"] for a in arch_names):
            return False
        return not (exc.get("caps") and any(c in capset for c in exc["caps"]))

    syscalls = []
    for rule in sd.SYSCALLS:
        if not applies(rule):
            continue
        entry: dict[str, Any] = {"names": list(rule["names"]), "action": rule["action"]}
        if rule.get("args"):
            entry["args"] = [dict(a) for a in rule["args"]]
        if "errnoRet" in rule:
            entry["errnoRet"] = rule["errnoRet"]
        syscalls.append(entry)
    return {"defaultAction": sd.DEFAULT_ACTION, "defaultErrnoRet": sd.DEFAULT_ERRNO_RET,
            "architectures": _arch_names(goarch), "syscalls": syscalls}


def _has_env(env: list[str], key: str) -> bool:
    return any(item.split("=", 1)[0] == key for item in env)


def default_mounts(privileged: bool) -> list[dict]:
    """/proc, /dev, /dev/pts, /sys, /sys/fs/cgroup, /dev/mqueue, /dev/shm as Docker mounts them."""
    sys_opts = ["nosuid", "noexec", "nodev", "ro"]
    if privileged:
        sys_opts = ["nosuid", "noexec", "nodev"]
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro", "nosuid", "noexec", "nodev"] if not privileged else ["rw", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    ]


def rlimits(hard_limits: dict[str, int]) -> list[dict]:
    """containerd's RLIMIT_NOFILE, clamped to what the host allows (no CAP_SYS_RESOURCE needed)."""
    hard = hard_limits.get("RLIMIT_NOFILE", DEFAULT_NOFILE)
    if hard < 0:
        hard = DEFAULT_NOFILE
    value = min(DEFAULT_NOFILE, hard)
    return [{"type": "RLIMIT_NOFILE", "hard": value, "soft": value}]


def resources(cfg: dict, inputs: SpecInputs) -> dict[str, Any]:
    """linux.resources from --memory, --memory-swap, --cpus, --cpu-shares, --pids-limit, --blkio-weight, --device."""
    res: dict[str, Any] = {"devices": [dict(r) for r in DEFAULT_DEVICE_RULES]}
    if cfg.get("privileged"):
        res["devices"] = [{"allow": True, "access": "rwm"}]
    for rule in cfg.get("device_cgroup_rules") or []:
        res["devices"].append(device_rule(rule))
    for dev in inputs.devices:
        res["devices"].append({"allow": True, "type": dev.type, "major": dev.major, "minor": dev.minor,
                               "access": dev.permissions})
    memory, swap = int(cfg.get("memory") or 0), int(cfg.get("memory_swap") or 0)
    if memory:
        mem: dict[str, Any] = {"limit": memory}
        if inputs.has_swap_limit:
            if swap == 0:
                mem["swap"] = memory * 2          # Docker: swap defaults to the memory limit again
            elif swap == -1:
                mem["swap"] = -1
            else:
                mem["swap"] = swap
        res["memory"] = mem
    if cfg.get("memory_reservation"):
        res.setdefault("memory", {})["reservation"] = int(cfg["memory_reservation"])
    cpu: dict[str, Any] = {}
    if cfg.get("nano_cpus"):
        period = 100000
        cpu.update(period=period, quota=int(cfg["nano_cpus"]) * period // 1_000_000_000)
    if cfg.get("cpu_period"):
        cpu["period"] = int(cfg["cpu_period"])
    if cfg.get("cpu_quota"):
        cpu["quota"] = int(cfg["cpu_quota"])
    if cfg.get("cpu_shares"):
        cpu["shares"] = int(cfg["cpu_shares"])
    if cfg.get("cpuset_cpus"):
        cpu["cpus"] = cfg["cpuset_cpus"]
    if cfg.get("cpuset_mems"):
        cpu["mems"] = cfg["cpuset_mems"]
    if cpu:
        res["cpu"] = cpu
    if cfg.get("pids_limit"):
        res["pids"] = {"limit": int(cfg["pids_limit"])}
    if cfg.get("blkio_weight") and inputs.has_blkio_weight:
        res["blockIO"] = {"weight": int(cfg["blkio_weight"])}
    return res


def build_spec(cfg: dict, inputs: SpecInputs) -> dict[str, Any]:
    """The OCI runtime config for the container config ``cfg`` (a ContainerConfig dict)."""
    privileged = bool(cfg.get("privileged"))
    caps = capabilities(cfg.get("cap_add") or [], cfg.get("cap_drop") or [], privileged)
    if inputs.host_caps is not None:
        caps = [c for c in caps if c in inputs.host_caps]
    env = list(cfg.get("env") or [])
    if not _has_env(env, "PATH"):
        env.insert(0, f"PATH={DEFAULT_PATH}")
    if not _has_env(env, "HOSTNAME") and cfg.get("hostname"):
        env.insert(1, f"HOSTNAME={cfg['hostname']}")
    if cfg.get("tty") and not _has_env(env, "TERM"):
        env.append("TERM=xterm")
    args = [cfg["path"], *cfg.get("args", [])] if cfg.get("path") else list(cfg.get("args", []))
    if not args:
        raise InvalidArgument("No command specified", exit_code=125)
    mounts = _ipc_mounts(default_mounts(privileged), cfg)
    if inputs.init_path:
        mounts.append({"destination": "/dev/init", "type": "bind", "source": inputs.init_path,
                       "options": ["bind", "ro"]})
        args = ["/dev/init", "--", *args]
    for dest, source in sorted(inputs.etc_files.items()):
        mounts.append({"destination": dest, "type": "bind", "source": source, "options": ["rbind", "rprivate"]})
    # user mounts go last so they override the defaults at the same place (like Docker)
    user_targets = {m["destination"] for m in inputs.mounts}
    mounts = [m for m in mounts if m["destination"] not in user_targets] + [dict(m) for m in inputs.mounts]
    security = cfg.get("security_opt") or []
    no_new_privs = any(opt in ("no-new-privileges", "no-new-privileges:true", "no-new-privileges=true")
                       for opt in security)
    seccomp_off = any(opt in ("seccomp=unconfined", "seccomp:unconfined") for opt in security)
    process: dict[str, Any] = {
        "terminal": bool(cfg.get("tty")),
        "user": {"uid": inputs.uid, "gid": inputs.gid},
        "args": args,
        "env": env,
        "cwd": cfg.get("workdir") or "/",
        "capabilities": {k: list(caps) for k in ("bounding", "effective", "permitted")},
        "rlimits": _with_ulimits(rlimits(inputs.hard_limits), cfg.get("ulimits") or []),
        "noNewPrivileges": no_new_privs,
    }
    if inputs.additional_gids:
        process["user"]["additionalGids"] = list(inputs.additional_gids)
    if cfg.get("oom_score_adj"):
        process["oomScoreAdj"] = int(cfg["oom_score_adj"])
    if inputs.uid == 0 or privileged:
        process["capabilities"]["inheritable"] = []
    namespaces: list[dict[str, Any]] = [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
    if inputs.netns is not None:
        namespaces.insert(1, dict(inputs.netns))
    for entry in namespaces:
        if entry["type"] in inputs.joined_namespaces:
            entry["path"] = inputs.joined_namespaces[entry["type"]]
    if inputs.uid_mappings:
        namespaces.append({"type": "user"})
    if cfg.get("ipc_mode") == "host":
        namespaces = [n for n in namespaces if n["type"] != "ipc"]
    if inputs.pidns != {"type": "pid"} or not inputs.own_uts or inputs.cgroupns:
        namespaces = with_modes(namespaces, pid=inputs.pidns, uts=inputs.own_uts, cgroup=inputs.cgroupns)
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "resources": resources(cfg, inputs),
        "maskedPaths": [] if privileged else list(MASKED_PATHS),
        "readonlyPaths": [] if privileged else list(READONLY_PATHS),
    }
    if inputs.cgroups_path:
        linux["cgroupsPath"] = inputs.cgroups_path
    if cfg.get("sysctls"):
        linux["sysctl"] = {str(k): str(v) for k, v in cfg["sysctls"].items()}
    if inputs.uid_mappings:
        linux["uidMappings"] = [dict(m) for m in inputs.uid_mappings]
        linux["gidMappings"] = [dict(m) for m in inputs.gid_mappings]
    if not privileged and not seccomp_off:
        linux["seccomp"] = seccomp_for(caps, inputs.goarch, inputs.kernel)
    devices = list(inputs.devices) + (list(inputs.privileged_devices) if privileged else [])
    if devices:
        linux["devices"] = [{"path": d.path, "type": d.type, "major": d.major, "minor": d.minor,
                             "fileMode": d.file_mode, "uid": d.uid, "gid": d.gid} for d in devices]
    hostname = cfg.get("hostname") or ""
    spec: dict[str, Any] = {
        "ociVersion": "1.0.2-dev",
        "process": process,
        "root": {"path": inputs.rootfs, "readonly": bool(cfg.get("read_only"))},
        "mounts": mounts,
        "linux": linux,
        "annotations": {"io.container.manager": "dockerbank"},
    }
    own_uts = inputs.own_uts and "uts" not in inputs.joined_namespaces  # a joined one keeps its owner's name
    if (inputs.netns is not None or hostname) and own_uts:  # no hostname without a UTS namespace
        spec["hostname"] = hostname
    if cfg.get("domainname") and own_uts:
        spec["domainname"] = cfg["domainname"]
    return spec


def device_rule(rule: str) -> dict[str, Any]:
    """One ``--device-cgroup-rule`` (``c 1:3 mr``) as an OCI ``linux.resources.devices`` entry."""
    match = re.match(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$", rule)  # moby's regex
    if match is None:
        raise InvalidArgument(f"invalid device cgroup rule format: '{rule}'", exit_code=125)
    kind, major, minor, access = match.groups()
    entry: dict[str, Any] = {"allow": True, "type": kind}
    if major != "*":  # a wildcard is an absent number (as DEFAULT_DEVICE_RULES write it)
        entry["major"] = int(major)
    if minor != "*":
        entry["minor"] = int(minor)
    entry["access"] = access
    return entry


def with_modes(base: list[dict[str, Any]], *, pid: dict[str, Any] | None, uts: bool,
               cgroup: bool) -> list[dict[str, Any]]:
    """The OCI namespaces after the modes: ``pid`` None shares the host's PID namespace (else the
    entry, with a ``path`` to join another container's), ``uts`` False the host's UTS namespace,
    ``cgroup`` True a private cgroup namespace."""
    result = []
    for entry in base:
        if entry.get("type") == "pid":
            if pid is None:
                continue
            entry = dict(pid)
        elif entry.get("type") == "uts" and not uts:
            continue
        result.append(entry)
    if cgroup and not any(e.get("type") == "cgroup" for e in result):
        result.append({"type": "cgroup"})
    return result


def _ipc_mounts(mounts: list[dict], cfg: dict) -> list[dict]:
    """/dev/shm after ``--shm-size`` and ``--ipc``: ``host`` binds the host's, ``none`` has none
    (docker's modes; /dev/mqueue is mounted from the IPC namespace the container is in); a pod's
    containers and the joiners of a shareable one bind its tmpfs (``shm_dir``, sized by its owner:
    podman's ShmDir, docker's containers/<id>/mounts/shm)."""
    mode, size = cfg.get("ipc_mode") or "", int(cfg.get("shm_size") or 0)
    shared = cfg.get("shm_dir") or ""
    result = []
    for mount in mounts:
        if mount["destination"] == "/dev/shm":
            if mode == "none":
                continue
            if mode == "host":
                mount = {"destination": "/dev/shm", "type": "bind", "source": "/dev/shm", "options": ["rbind", "rprivate"]}
            elif shared:
                mount = {"destination": "/dev/shm", "type": "bind", "source": shared,
                         "options": ["rbind", "rprivate", "nosuid", "noexec", "nodev"]}
            elif size:
                mount = {**mount, "options": [o for o in mount["options"] if not o.startswith("size=")] + [f"size={size}"]}
        result.append(mount)
    return result


def _with_ulimits(limits: list[dict], ulimits: list[dict]) -> list[dict]:
    """``--ulimit`` values over the defaults (docker's names, RLIMIT_<NAME> in the spec)."""
    wanted = {f"RLIMIT_{u['Name'].upper()}": {"type": f"RLIMIT_{u['Name'].upper()}", "hard": int(u["Hard"]),
                                               "soft": int(u["Soft"])} for u in ulimits}
    return [wanted.pop(limit["type"], limit) for limit in limits] + list(wanted.values())
