"""What ``create`` is asked for (docker's flags as one typed value) and the parsers of the flags
whose text needs reading (a signal, a restart policy, a device)."""

from __future__ import annotations

import signal as signals
from dataclasses import dataclass, field

from dockerbank.errors import InvalidArgument

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import Any


SIGNALS = {name[3:]: int(value) for name, value in signals.Signals.__members__.items() if name.startswith("SIG")
           and not name.startswith("SIG_")}


def parse_signal(value: str | int) -> int:
    """``TERM``, ``SIGTERM``, ``15`` -> 15; Docker's message for anything else."""
    text = str(value).strip().upper()
    if text.isdigit():
        number = int(text)
        if 0 < number < 65:
            return number
    else:
        name = text.removeprefix("SIG")
        if name in SIGNALS:
            return SIGNALS[name]
    raise InvalidArgument(f"Invalid signal: {value}")


@dataclass
class CreateOptions:
    """Everything ``create``/``run`` take, already parsed by the CLI (or the API)."""

    image: str
    command: list[str] = field(default_factory=list)
    entrypoint: list[str] | None = None     # None: the image's; [] (``--entrypoint ""``): none
    name: str | None = None
    env: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    tty: bool = False
    interactive: bool = False
    mounts: list[Any] = field(default_factory=list)          # volume.mounts.MountSpec
    volumes_from: list[str] = field(default_factory=list)
    read_only: bool = False
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    init: bool = False
    restart: str = "no"
    auto_remove: bool = False
    memory: int = 0
    memory_swap: int = 0
    nano_cpus: int = 0
    cpu_shares: int = 0
    pids_limit: int = 0
    blkio_weight: int = 0
    network: str = ""
    network_options: dict[str, Any] = field(default_factory=dict)  # cli.netflags.network_options_from()
    stop_signal: str | None = None
    stop_timeout: int | None = None
    attach: list[str] = field(default_factory=list)
    healthcheck: dict[str, Any] | None = None   # docker's Healthcheck; None: the image's (container.health)
    log_driver: str | None = None               # --log-driver (container.logconfig); None: k8s-file
    log_opts: dict[str, str] = field(default_factory=dict)   # --log-opt KEY=VALUE
    links: list[str] = field(default_factory=list)          # --link NAME[:ALIAS]
    pid_mode: str = ""                                     # --pid host|container:NAME
    uts_mode: str = ""                                     # --uts host
    cgroupns_mode: str = ""                                # --cgroupns host|private
    group_add: list[str] = field(default_factory=list)      # --group-add
    device_cgroup_rules: list[str] = field(default_factory=list)  # --device-cgroup-rule
    cpuset_cpus: str = ""                                  # --cpuset-cpus
    cpuset_mems: str = ""                                  # --cpuset-mems
    mac_address: str = ""                                  # --mac-address
    isolation: str = ""                                    # --isolation (only "default" on Linux)
    userns: str = ""                            # --userns: host | auto[:size=N]; "": the root's default
    # pods (pod.service fills these): the pod's ID, whether this is its infra container, and the
    # IPC namespace joined ("container:<ref>"; a member's UTS and PID are uts_mode/pid_mode above)
    pod: str = ""
    infra: bool = False
    ipc_mode: str = ""                          # --ipc private|shareable|host|none (or a pod's container:)
    shm_dir: str = ""                           # a pod's shared /dev/shm (pod.service): bound, not a tmpfs of its own
    shm_size: int = 0                           # --shm-size (bytes)
    ulimits: list[dict] = field(default_factory=list)   # --ulimit, as docker's {"Name", "Soft", "Hard"}
    sysctls: dict[str, str] = field(default_factory=dict)   # --sysctl
    oom_score_adj: int = 0                      # --oom-score-adj
    cpu_period: int = 0                         # --cpu-period
    cpu_quota: int = 0                          # --cpu-quota
    memory_reservation: int = 0                 # --memory-reservation


def parse_restart(value: str) -> dict[str, Any]:
    name, _, count = (value or "no").partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise InvalidArgument(f"invalid restart policy: {value}", exit_code=125)
    if count and (name != "on-failure" or not count.isdigit()):
        raise InvalidArgument(f"invalid restart policy: maximum retry count only valid with on-failure: {value}",
                              exit_code=125)
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


def parse_device(value: str) -> dict[str, str]:
    parts = value.split(":")
    host = parts[0]
    inside = parts[1] if len(parts) > 1 and parts[1].startswith("/") else host
    perms = parts[-1] if len(parts) > 1 and not parts[-1].startswith("/") else "rwm"
    if not set(perms) <= set("rwm"):
        raise InvalidArgument(f"invalid device mode: {perms}", exit_code=125)
    return {"PathOnHost": host, "PathInContainer": inside, "CgroupPermissions": perms}
