"""Network and endpoint records, and Docker's JSON shape for ``network inspect``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import Any

from dockerbank.network import DEFAULT_NETWORK  # noqa: F401  (part of the model's vocabulary)

BRIDGE_PREFIX = "dbk"          # host bridge names: dbk + 12 hex of the network id (<= 15 chars)
SPECIAL_MODES = ("none", "host")  # network modes that are not networks of the store


def bridge_name(network_id: str) -> str:
    """The host bridge interface of a network (unique across roots because ids are random)."""
    return f"{BRIDGE_PREFIX}{network_id[:12]}"


#: Network.options keys (hidden from inspect's Options) of the IPAM settings beyond the IPv4 subnet
IP_RANGE, SUBNET6, GATEWAY6, IP_RANGE6 = "_ip_range", "_subnet6", "_gateway6", "_ip_range6"


@dataclass(frozen=True)
class Network:
    """A network as stored: one IPv4 subnet (and optionally one IPv6 subnet) on one Linux bridge."""

    id: str
    name: str
    driver: str
    created: str
    subnet: str
    gateway: str
    internal: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)

    @property
    def interface(self) -> str:
        return bridge_name(self.id)

    @property
    def prefix(self) -> int:
        """The IPv4 subnet's prefix length (stored in CIDR form: no parse of the address needed)."""
        return int(self.subnet.rpartition("/")[2])

    @property
    def ip_range(self) -> str:
        return self.options.get(IP_RANGE, "")

    @property
    def subnet6(self) -> str:
        """The IPv6 subnet ("" for an IPv4-only network; docker's EnableIPv6)."""
        return self.options.get(SUBNET6, "")

    @property
    def gateway6(self) -> str:
        return self.options.get(GATEWAY6, "")

    @property
    def ip_range6(self) -> str:
        return self.options.get(IP_RANGE6, "")

    def ipam_config(self) -> list[dict[str, str]]:
        """docker's IPAM.Config: the IPv4 pool, then the IPv6 one."""
        v4 = {"Subnet": self.subnet, "Gateway": self.gateway, **({"IPRange": self.ip_range} if self.ip_range else {})}
        if not self.subnet6:
            return [v4]
        v6 = {"Subnet": self.subnet6, "Gateway": self.gateway6,
              **({"IPRange": self.ip_range6} if self.ip_range6 else {})}
        return [v4, v6]

    @property
    def dns_enabled(self) -> bool:
        # Docker's default bridge has no embedded DNS; user-defined networks do.
        return self.name != DEFAULT_NETWORK

    @classmethod
    def from_row(cls, row: Any) -> Network:
        return cls(
            id=row["id"], name=row["name"], driver=row["driver"], created=row["created"],
            subnet=row["subnet"], gateway=row["gateway"], internal=bool(row["internal"]),
            labels=json.loads(row["labels"]), options=json.loads(row["options"]),
        )


@dataclass(frozen=True)
class PortMapping:
    """One published port: host_ip:host_port -> container_port/protocol ("" host_ip = all)."""

    host_ip: str
    host_port: int
    container_port: int
    protocol: str = "tcp"

    def to_dict(self) -> dict[str, Any]:
        return {"host_ip": self.host_ip, "host_port": self.host_port,
                "container_port": self.container_port, "protocol": self.protocol}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PortMapping:
        return cls(data["host_ip"], int(data["host_port"]), int(data["container_port"]), data["protocol"])


@dataclass(frozen=True)
class Endpoint:
    """A container's attachment to one network."""

    container_id: str
    network_id: str
    container_name: str
    ip: str
    mac: str
    interface_name: str
    aliases: tuple[str, ...] = ()
    ports: tuple[PortMapping, ...] = ()
    ip6: str = ""                      # on a network with an IPv6 subnet

    @property
    def endpoint_id(self) -> str:
        # Stable and unique per (container, network) without another column.
        import hashlib

        return hashlib.sha256(f"{self.container_id}/{self.network_id}".encode()).hexdigest()

    @classmethod
    def from_row(cls, row: Any) -> Endpoint:
        return cls(
            container_id=row["container_id"], network_id=row["network_id"],
            container_name=row["container_name"], ip=row["ip"], mac=row["mac"],
            interface_name=row["interface_name"], aliases=tuple(json.loads(row["aliases"])),
            ports=tuple(PortMapping.from_dict(p) for p in json.loads(row["ports"])),
            ip6=row["ip6"] if "ip6" in row.keys() else "",
        )


def inspect_shape(network: Network, endpoints: list[Endpoint]) -> dict[str, Any]:
    """What ``docker network inspect`` prints for one network."""
    prefix = network.subnet.split("/")[1]
    # dockerd names the bridge in Options only for the default network; a user network shows only
    # what its creator asked for (docker-compose 1.29 recreates a network whose Options differ)
    named = {"com.docker.network.bridge.name": network.interface} if network.name == "bridge" else {}
    options = {**named, **{k: v for k, v in network.options.items() if not k.startswith("_")}}
    return {
        "Name": network.name,
        "Id": network.id,
        "Created": network.created,
        "Scope": "local",
        "Driver": network.driver,
        "EnableIPv6": bool(network.subnet6),
        "IPAM": {"Driver": "default", "Options": {}, "Config": network.ipam_config()},
        "Internal": network.internal,
        "Attachable": False,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": {
            ep.container_id: {"Name": ep.container_name, "EndpointID": ep.endpoint_id,
                              "MacAddress": ep.mac, "IPv4Address": f"{ep.ip}/{prefix}",
                              "IPv6Address": f"{ep.ip6}/{network.subnet6.split('/')[1]}" if ep.ip6 else ""}
            for ep in endpoints
        },
        "Options": options,
        "Labels": dict(network.labels),
    }


def ports_shape(ports: tuple[PortMapping, ...] | list[PortMapping]) -> dict[str, list[dict[str, str]]]:
    """Docker's ``NetworkSettings.Ports``: {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}."""
    shaped: dict[str, list[dict[str, str]]] = {}
    for port in ports:
        shaped.setdefault(f"{port.container_port}/{port.protocol}", []).append(
            {"HostIp": port.host_ip or "0.0.0.0", "HostPort": str(port.host_port)})
    return shaped
