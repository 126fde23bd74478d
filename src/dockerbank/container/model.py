"""A container's fixed configuration and its changing state, and Docker's status words.

The config is written once at ``create``; the state changes under a write transaction.
Both are plain dataclasses stored as JSON in the ``containers`` table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import Any

CREATED = "created"
RUNNING = "running"
PAUSED = "paused"
RESTARTING = "restarting"
REMOVING = "removing"
EXITED = "exited"
DEAD = "dead"
STATUSES = (CREATED, RUNNING, PAUSED, RESTARTING, REMOVING, EXITED, DEAD)

#: Statuses in which the container has a live init process and a conmon watching it.
ACTIVE = (RUNNING, PAUSED)

#: Which transitions are allowed (the state machine; anything else is a bug or a race).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    CREATED: (RUNNING, EXITED, REMOVING, DEAD),
    RUNNING: (PAUSED, EXITED, RESTARTING, REMOVING, DEAD),
    PAUSED: (RUNNING, EXITED, REMOVING, DEAD),
    RESTARTING: (RUNNING, EXITED, REMOVING, DEAD),
    EXITED: (RUNNING, RESTARTING, REMOVING, DEAD, CREATED),
    REMOVING: (DEAD,),
    DEAD: (REMOVING,),
}

ZERO_TIME = "0001-01-01T00:00:00Z"
DEFAULT_SHM_SIZE = 64 * 1024 * 1024   # docker's /dev/shm when --shm-size is not given


def _from_dict(cls, data: dict[str, Any]):
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = frozenset(f.name for f in fields(cls))  # once per class: ps reads many rows
    if data.keys() == names:
        # A row written by to_dict names every field: its values are the instance's attributes as
        # they are (these dataclasses have no __post_init__), so the ~70-argument __init__ with
        # its default factories is skipped: half the cost of a row, which ps pays per container.
        obj = object.__new__(cls)
        obj.__dict__.update(data)
        return obj
    return cls(**{k: v for k, v in data.items() if k in names})


_FIELDS: dict[type, frozenset[str]] = {}


@dataclass
class ContainerConfig:
    """What ``create`` decided; never changes afterwards (``rename`` changes only the row's name)."""

    image: str                                   # the image as the user named it
    image_id: str
    path: str                                    # Docker's Path and Args: the effective command
    args: list[str] = field(default_factory=list)
    entrypoint: list[str] | None = None          # as in inspect's Config (image's unless overridden)
    cmd: list[str] | None = None
    env: list[str] = field(default_factory=list)
    workdir: str = ""
    user: str = ""
    hostname: str = ""
    domainname: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    tty: bool = False
    open_stdin: bool = False
    mounts: list[dict] = field(default_factory=list)   # volume.mounts.MountSpec.to_dict()
    read_only: bool = False
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)
    devices: list[dict] = field(default_factory=list)  # PathOnHost, PathInContainer, CgroupPermissions
    init: bool = False
    restart_policy: dict[str, Any] = field(default_factory=lambda: {"Name": "no", "MaximumRetryCount": 0})
    auto_remove: bool = False
    memory: int = 0
    memory_swap: int = 0
    nano_cpus: int = 0
    cpu_shares: int = 0
    pids_limit: int = 0
    blkio_weight: int = 0
    network_mode: str = "none"
    network: dict[str, Any] = field(default_factory=dict)  # network.runtime.validate_create(): kind, ports, dns...
    stop_signal: str = "SIGTERM"
    stop_timeout: int | None = None
    exposed_ports: dict[str, dict] = field(default_factory=dict)
    image_volumes: dict[str, dict] = field(default_factory=dict)
    attach: list[str] = field(default_factory=list)     # streams attached at create (STDIN/STDOUT/STDERR)
    log_config: dict[str, Any] = field(default_factory=dict)  # docker's LogConfig {Type, Config}; {}: k8s-file
    healthcheck: dict[str, Any] | None = None           # docker's Healthcheck (image's merged with create's)
    # docker's HostConfig fields of the same names (container.hostmodes checks them)
    volumes_from: list[str] = field(default_factory=list)   # as given: "other[:ro|rw]"
    links: list[str] = field(default_factory=list)          # "target-name:alias"
    pid_mode: str = ""                                     # "", "host", "container:<id>"
    uts_mode: str = ""                                     # "", "host", "container:<id>" (a pod's member)
    cgroupns_mode: str = ""                                # "", "host", "private"
    group_add: list[str] = field(default_factory=list)
    device_cgroup_rules: list[str] = field(default_factory=list)
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    mac_address: str = ""
    isolation: str = ""
    userns: dict[str, Any] | None = None                # --userns=auto: its ID mappings (container.userns); None: host
    pod: str = ""                                 # the ID of the pod this container belongs to ('' none)
    is_infra: bool = False                        # the pod's infra container (holds its namespaces)
    ipc_mode: str = ""                            # docker's IpcMode: '' private, "container:<id>" joined
    shm_dir: str = ""                             # host dir bound at /dev/shm (a pod's shared tmpfs); '' own tmpfs
    # resources and kernel knobs (container.hostmodes checks them; runtime.spec applies them)
    shm_size: int = 0                              # bytes of /dev/shm; 0: docker's 64 MiB
    ulimits: list[dict] = field(default_factory=list)     # docker's [{"Name", "Soft", "Hard"}]
    sysctls: dict[str, str] = field(default_factory=dict)
    oom_score_adj: int = 0
    cpu_period: int = 0
    cpu_quota: int = 0
    memory_reservation: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContainerConfig:
        return _from_dict(cls, data)


@dataclass
class ContainerState:
    """What changes: status, pids, exit code and times (RFC 3339, Docker's zero time when unset)."""

    status: str = CREATED
    pid: int = 0
    conmon_pid: int = 0
    conmon_start: int = 0          # /proc/<pid>/stat starttime: tells a reused pid apart
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    restart_count: int = 0
    mounted: bool = False
    user_stopped: bool = False     # stopped by stop/kill: restart policies leave it alone
    boot_id: str = ""              # the host boot the container ran in (restart after reboot)
    attached: bool = False         # a foreground CLI does the clean-up (no conmon exit command)
    health: dict[str, Any] | None = None  # docker's State.Health {Status, FailingStreak, Log} (container.health)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContainerState:
        return _from_dict(cls, data)

    @property
    def running(self) -> bool:
        return self.status in ACTIVE


@dataclass
class Container:
    """One row of the ``containers`` table."""

    id: str
    name: str
    created: str
    config: ContainerConfig
    state: ContainerState

    @property
    def short_id(self) -> str:
        return self.id[:12]


def can_transition(old: str, new: str) -> bool:
    """Whether the state machine allows ``old`` -> ``new`` (same status is always allowed)."""
    return old == new or new in TRANSITIONS.get(old, ())
