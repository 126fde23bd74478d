"""A pod's fixed configuration, its status derived from its containers, and the pure rules of
pod options and of joining a pod (podman's wording where podman has one)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from dockerbank.errors import InvalidArgument, NotFound

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

#: What ``--share`` accepts; podman's default shares these three.
SHAREABLE = ("ipc", "net", "uts", "pid")
DEFAULT_SHARE = ("ipc", "net", "uts")

# podman's pod states (libpod/define/podstate.go)
CREATED, RUNNING, STOPPED, PAUSED, EXITED, DEGRADED, ERROR = (
    "Created", "Running", "Stopped", "Paused", "Exited", "Degraded", "Error")


@dataclass
class PodConfig:
    """What ``pod create`` decided; never changes afterwards."""

    hostname: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    share: list[str] = field(default_factory=lambda: list(DEFAULT_SHARE))
    infra: bool = True
    network: str = ""                              # --network as given ('' the default bridge)
    network_options: dict[str, Any] = field(default_factory=dict)  # ports, dns, add_hosts... (cli.netflags)
    create_command: list[str] = field(default_factory=list)
    shm_size: int = 0                              # bytes of the pod's shared /dev/shm; 0: docker's 64 MiB

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PodConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Pod:
    """One row of the ``pods`` table."""

    id: str
    name: str
    created: str
    infra_id: str
    config: PodConfig

    @property
    def short_id(self) -> str:
        return self.id[:12]


def not_found(ref: str) -> NotFound:
    """podman's message for a pod that is not there (exit 125, as podman's pod commands)."""
    return NotFound(f"no pod with name or ID {ref} found: no such pod", exit_code=125)


def validate_name(name: str) -> str:
    """podman's rule for pod names (one character is enough, unlike docker's container names)."""
    import re

    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", name):
        raise InvalidArgument(f"invalid pod name {name!r}: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*",
                              exit_code=125)
    return name


def parse_share(text: str | None) -> list[str]:
    """``--share ipc,net,uts`` (``none`` or '' shares nothing); a leading ``+`` adds to the default."""
    if text is None:
        return list(DEFAULT_SHARE)
    value = text.strip()
    base: list[str] = []
    if value.startswith("+"):
        base, value = list(DEFAULT_SHARE), value[1:]
    if value in ("", "none"):
        return base
    wanted = list(base)
    for item in value.split(","):
        kind = item.strip()
        if kind == "cgroup":
            raise InvalidArgument("sharing the cgroup namespace is not supported: share ipc, net, uts or pid",
                                  exit_code=125)
        if kind not in SHAREABLE:
            raise InvalidArgument(f"invalid kernel namespace to share: {kind}: options are ipc, net, uts, pid",
                                  exit_code=125)
        if kind not in wanted:
            wanted.append(kind)
    return wanted


def check_create(config: PodConfig) -> None:
    """Refuse pod options that cannot go together (before anything exists)."""
    opts = config.network_options or {}
    if not config.infra:
        if config.share:
            raise InvalidArgument("you must have an infra container to share namespaces (--share)", exit_code=125)
        if opts.get("ports") or config.network:
            raise InvalidArgument("you must have an infra container to publish ports or set a network", exit_code=125)
    elif "net" not in config.share and (opts.get("ports") or config.network):
        raise InvalidArgument("cannot set ports or a network for a pod that does not share its network namespace",
                              exit_code=125)
    if config.network.startswith("container:"):
        raise InvalidArgument("pods cannot join the network of a container: use --network bridge, host, none "
                              "or a network's name", exit_code=125)
    if config.shm_size < 0:
        raise InvalidArgument("SHM size can not be less than 0", exit_code=125)


def member_conflicts(share: Iterable[str], *, network: str, network_options: dict[str, Any],
                     hostname: str | None, ipc: str = "", uts: str = "", pid: str = "") -> str | None:
    """Why a container cannot join a pod with these options (podman's wording), or None.

    A pod that shares its network owns the ports, addresses and DNS: its members set none; one
    that shares UTS owns the hostname."""
    share = set(share)
    if "net" in share:
        if network and network not in ("default", "bridge"):
            return "invalid config provided: network cannot be configured when it is shared with a pod"
        if network_options.get("ports") or network_options.get("publish_all"):
            return ("invalid config provided: published or exposed ports must be defined when the pod is "
                    "created: network cannot be configured when it is shared with a pod")
        for key, flag in (("ip", "--ip"), ("aliases", "--network-alias"), ("dns", "--dns"),
                          ("dns_search", "--dns-search"), ("dns_options", "--dns-option"),
                          ("add_hosts", "--add-host")):
            if network_options.get(key):
                return f"invalid config provided: {flag} must be set when the pod is created: its network is shared"
    if "uts" in share and hostname:
        return "invalid config provided: cannot set hostname when joining the pod UTS namespace"
    for kind, value in (("ipc", ipc), ("uts", uts), ("pid", pid)):
        if value and kind in share:
            return f"invalid config provided: cannot set --{kind} when joining the pod's {kind.upper()} namespace"
    return None


def member_modes(share: Iterable[str], infra_id: str) -> dict[str, str]:
    """The namespace modes of a member of a pod sharing ``share`` through ``infra_id``:
    ``network``, ``ipc``, ``uts``, ``pid`` as CreateOptions takes them ('' private)."""
    share = set(share)
    joined = f"container:{infra_id}"
    return {"network": joined if "net" in share else "", "ipc": joined if "ipc" in share else "",
            "uts": joined if "uts" in share else "", "pid": joined if "pid" in share else ""}


def pod_status(statuses: Iterable[str]) -> str:
    """The pod's state from its containers' statuses (infra included), as podman derives it
    (libpod/pod_status.go): all running Running, some Degraded; all stopped Exited, some Stopped."""
    running = paused = stopped = errored = total = 0
    for status in statuses:
        total += 1
        if status in ("exited", "stopped"):
            stopped += 1
        elif status in ("running", "restarting"):
            running += 1
        elif status == "paused":
            paused += 1
        elif status != "created":
            errored += 1
    if total == 0:
        return CREATED
    if running == total:
        return RUNNING
    if running:
        return DEGRADED
    if paused == total:
        return PAUSED
    if stopped == total:
        return EXITED
    if stopped:
        return STOPPED
    if errored:
        return ERROR
    return CREATED
