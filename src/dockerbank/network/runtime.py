"""What ``run``/``create``/``start`` need from the network layer, in two calls.

``parse_mode`` (pure) checks the ``--network`` values and their companions at create time;
``NetworkService.prepare(...)`` (in ``prepare_container_network`` below) sets the namespace up at
start and returns the OCI namespace entry plus the texts of /etc/hosts and /etc/resolv.conf;
``NetworkService.detach(container_id)`` undoes it at stop/rm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from dockerbank.errors import InvalidArgument
from dockerbank.network.etcfiles import host_nameservers, hosts_file, parse_add_host, resolv_conf
from dockerbank.network.model import DEFAULT_NETWORK
from dockerbank.network.ports import PortRequest, parse_exposed, parse_publish


@dataclass(frozen=True)
class NetworkMode:
    """``--network``: kind is bridge (the default), none, host, container, or user (named networks)."""

    kind: str
    networks: tuple[str, ...] = ()
    container: str | None = None

    @property
    def docker_name(self) -> str:
        """HostConfig.NetworkMode as docker shows it."""
        if self.kind == "container":
            return f"container:{self.container}"
        if self.kind == "user":
            return self.networks[0]
        return "default" if self.kind == "bridge" else self.kind


def parse_mode(values: Iterable[str] = (), *, ports: Iterable[str] = (), publish_all: bool = False,
               ip: str | None = None, aliases: Iterable[str] = (), dns: Iterable[str] = (),
               add_hosts: Iterable[str] = ()) -> NetworkMode:
    """Validate ``--network`` and the options that depend on it, with docker's messages."""
    values = [v for v in values if v]
    if not values or values == ["default"]:
        values = [DEFAULT_NETWORK]
    specials = [v for v in values if v in ("none", "host") or v.startswith("container:")]
    if specials and len(values) > 1:
        raise InvalidArgument(f"conflicting options: cannot attach both user-defined and non-user-defined network-modes")
    for spec in add_hosts:
        parse_add_host(spec)
    for spec in ports:
        parse_publish(spec)
    value = values[0]
    if value.startswith("container:"):
        target = value.split(":", 1)[1]
        if not target:
            raise InvalidArgument("--network container: needs a container name or ID")
        if list(ports) or publish_all:
            raise InvalidArgument("conflicting options: port publishing and the container type network mode")
        if list(dns):
            raise InvalidArgument("conflicting options: dns and the network mode")
        return NetworkMode("container", container=target)
    if value in ("none", "host"):
        if ip:
            raise InvalidArgument("user specified IP address is supported on user defined networks only")
        return NetworkMode(value)
    if values == [DEFAULT_NETWORK]:
        if ip:
            raise InvalidArgument("user specified IP address is supported on user defined networks only")
        if list(aliases):
            raise InvalidArgument("network-scoped alias is supported only for containers in user defined networks")
        return NetworkMode("bridge", (DEFAULT_NETWORK,))
    return NetworkMode("user", tuple(dict.fromkeys(values)))


@dataclass
class ContainerNetwork:
    """The result of preparing a container's network at start."""

    namespace: dict[str, Any] | None   # the linux.namespaces entry; None = share the host's
    hosts: str                          # /etc/hosts content
    resolv: str                         # /etc/resolv.conf content
    settings: dict[str, Any] = field(default_factory=dict)  # NetworkSettings for inspect


def port_requests(ports: Iterable[str], publish_all: bool, exposed: Iterable[str]) -> list[PortRequest]:
    """``-p`` values plus, with ``-P``, every exposed port not already published."""
    requests = [r for spec in ports for r in parse_publish(spec)]
    if publish_all:
        have = {(r.container_port, r.protocol) for r in requests}
        requests += [r for r in parse_exposed(exposed) if (r.container_port, r.protocol) not in have]
    return requests


def _host_resolv() -> str:
    try:
        return Path("/etc/resolv.conf").read_text()
    except OSError:
        return ""


def prepare_container_network(service, container_id: str, name: str, mode: NetworkMode, *, hostname: str,
                              ports: Iterable[str] = (), publish_all: bool = False, exposed: Iterable[str] = (),
                              ip: str | None = None, aliases: Iterable[str] = (), dns: Iterable[str] = (),
                              dns_search: Iterable[str] = (), dns_options: Iterable[str] = (),
                              add_hosts: Iterable[str] = (), joined_netns: str | None = None) -> ContainerNetwork:
    """Set up the network of a starting container (``service`` is a NetworkService).

    ``joined_netns`` is the namespace path (``/proc/<pid>/ns/net`` or a SandboxKey) of the
    container named by ``--network container:NAME``; the caller resolves it.
    """
    extra = [parse_add_host(spec) for spec in add_hosts]
    dns = list(dns)
    host_servers = host_nameservers(_host_resolv())
    if mode.kind == "host":
        import socket

        return ContainerNetwork(None, hosts_file(socket.gethostname(), [], extra), _host_resolv() or resolv_conf(dns),
                                {"Networks": {"host": {}}, "SandboxKey": "", "Ports": {}})
    if mode.kind == "none":
        return ContainerNetwork({"type": "network"}, hosts_file(hostname, [], extra),
                                resolv_conf(dns or host_servers, dns_search, dns_options),
                                {"Networks": {"none": {}}, "SandboxKey": "", "Ports": {}})
    if mode.kind == "container":
        if not joined_netns:
            raise InvalidArgument(f"cannot join network of container {mode.container}: it is not running")
        return ContainerNetwork({"type": "network", "path": joined_netns}, hosts_file(hostname, [], extra),
                                resolv_conf(dns or host_servers, dns_search, dns_options),
                                {"Networks": {}, "SandboxKey": joined_netns, "Ports": {}})
    from dockerbank.network.service import AttachRequest

    if service.endpoints(container_id=container_id):
        service.detach(container_id)  # left from a run that ended without a stop (crash, OOM, reboot)
    request = AttachRequest(container_id, name, list(mode.networks), port_requests(ports, publish_all, exposed),
                            list(aliases), ip, hostname, dns)
    settings = service.attach(request)
    try:
        addresses = [n["IPAddress"] for n in settings["Networks"].values()][:1]
        if mode.kind == "user":
            servers = settings["DnsServers"] or dns or host_servers
            search = list(dns_search)  # aardvark's "dns.podman" domain is not Docker's behaviour
        else:
            servers, search = dns or host_servers, list(dns_search)
        return ContainerNetwork({"type": "network", "path": settings["SandboxKey"]},
                                hosts_file(hostname, addresses, extra), resolv_conf(servers, search, dns_options),
                                settings)
    except BaseException:
        service.detach(container_id)
        raise
