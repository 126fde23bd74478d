"""What ``run``/``create``/``start`` need from the network layer, in two calls.

``parse_mode`` (pure) checks the ``--network`` values and their companions at create time;
``NetworkService.prepare(...)`` (in ``prepare_container_network`` below) sets the namespace up at
start and returns the OCI namespace entry plus the texts of /etc/hosts and /etc/resolv.conf;
``NetworkService.detach(container_id)`` undoes it at stop/rm.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dockerbank.errors import InvalidArgument
from dockerbank.network import DEFAULT_NETWORK
from dockerbank.network.etcfiles import host_nameservers, hosts_file, parse_add_host, resolv_conf

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:  # ports (and ipaddress) only where ports are parsed: not for --network none
    from typing import Any

    from dockerbank.network.ports import PortRequest
    from dockerbank.network.service import NetworkService


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
               add_hosts: Iterable[str] = (), ip6: str | None = None) -> NetworkMode:
    """Validate ``--network`` and the options that depend on it, with docker's messages."""
    values = [v for v in values if v]
    ip = ip or ip6  # the same rules for --ip and --ip6
    if not values or values == ["default"]:
        values = [DEFAULT_NETWORK]
    specials = [v for v in values if v in ("none", "host") or v.startswith("container:")]
    if specials and len(values) > 1:
        raise InvalidArgument("conflicting options: cannot attach both user-defined and non-user-defined network-modes")
    for spec in add_hosts:
        parse_add_host(spec)
    if ports:
        from dockerbank.network.ports import parse_publish

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
    from dockerbank.network.ports import parse_exposed, parse_publish

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
                              add_hosts: Iterable[str] = (), joined_netns: str | None = None,
                              mac: str | None = None, ip6: str | None = None) -> ContainerNetwork:
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
                            list(aliases), ip, hostname, dns, mac or None, ip6 or None)
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


# --- the container lifecycle's side: config dict in, namespace + files out --------------------

def config_of(mode: NetworkMode, options: dict[str, Any]) -> dict[str, Any]:
    """What a container's config stores about its network (``ContainerConfig.network``)."""
    return {
        "kind": mode.kind, "networks": list(mode.networks), "container": mode.container,
        "ports": list(options.get("ports") or []), "publish_all": bool(options.get("publish_all")),
        "ip": options.get("ip") or None, "ip6": options.get("ip6") or None,
        "aliases": list(options.get("aliases") or []),
        "dns": list(options.get("dns") or []), "dns_search": list(options.get("dns_search") or []),
        "dns_options": list(options.get("dns_options") or []), "add_hosts": list(options.get("add_hosts") or []),
        "expose": [e if "/" in e else f"{e}/tcp" for e in options.get("expose") or []],
    }


def validate_create(engine, network_value: str, options: dict[str, Any]) -> dict[str, Any]:
    """At ``create``: check ``--network`` and its companions, and that named networks exist.

    Returns the dict to store as ``ContainerConfig.network``. Errors end ``run`` with 125.
    """
    from dockerbank.errors import DockerbankError

    try:
        mode = parse_mode([network_value] if network_value else [], ports=options.get("ports") or (),
                          publish_all=bool(options.get("publish_all")), ip=options.get("ip"),
                          aliases=options.get("aliases") or (), dns=options.get("dns") or (),
                          add_hosts=options.get("add_hosts") or (), ip6=options.get("ip6"))
        for name in mode.networks:
            engine.networks.get(name)
    except DockerbankError as exc:
        exc.exit_code = 125
        raise
    return config_of(mode, options)


def rewire(net: dict[str, Any], network_name: str, container_name: str, *, connect: bool,
           aliases: Iterable[str] = (), ip: str | None = None, ip6: str | None = None) -> tuple[dict[str, Any], str]:
    """The stored network of a container that does not run, after ``network connect/disconnect``:
    (the new ``ContainerConfig.network``, the new ``network_mode``) (pure)."""
    from dockerbank.errors import Conflict, NotFound

    net = dict(net)
    if net.get("kind") in ("host", "container"):
        raise Conflict(f"container cannot be connected to network {network_name}: its network mode is {net['kind']}")
    names = list(net.get("networks") or [])
    if connect:
        if network_name in names:
            raise Conflict(f"endpoint with name {container_name} already exists in network {network_name}")
        names.append(network_name)
        net["aliases"] = list(dict.fromkeys([*(net.get("aliases") or []), *aliases]))
        if ip:
            net["ip"] = ip
        if ip6:
            net["ip6"] = ip6
    else:
        if network_name not in names:
            raise NotFound(f"container {container_name} is not connected to network {network_name}")
        names.remove(network_name)
    if not names:
        net.update(kind="none", networks=[])
        return net, "none"
    net.update(kind="bridge" if names == [DEFAULT_NETWORK] else "user", networks=names)
    return net, "default" if names == [DEFAULT_NETWORK] else names[0]


def connect_container(engine, network_ref: str, container_ref: str, aliases: Iterable[str] = (),
                      ip: str | None = None, ip6: str | None = None) -> None:
    """``network connect``: a running container gets its endpoint now; one that does not run has its
    stored network changed and gets the endpoint at its next start (as dockerd does; docker-compose
    1.29 disconnects and reconnects every created container before it starts it)."""
    container = engine.containers.get(container_ref)
    if container.state.status in ("running", "paused"):
        engine.networks.connect(network_ref, container.id, container.name, list(aliases), ip, ip6)
        return
    network = engine.networks.get(network_ref)
    _rewire_stored(engine, container, network.name, connect=True, aliases=aliases, ip=ip, ip6=ip6)


def disconnect_container(engine, network_ref: str, container_ref: str, force: bool = False) -> None:
    """``network disconnect``, for running containers and for ones that do not run."""
    container = engine.containers.get(container_ref)
    if container.state.status in ("running", "paused"):
        engine.networks.disconnect(network_ref, container.id, force)
        return
    network = engine.networks.get(network_ref)
    _rewire_stored(engine, container, network.name, connect=False)


def _rewire_stored(engine, container, network_name: str, **change) -> None:
    def rewired(config):
        config.network, config.network_mode = rewire(config.network or {}, network_name, container.name, **change)

    engine.containers.store.update_config(container.id, rewired)


def network_up(engine, container, base: Path) -> ContainerNetwork | None:
    """At ``start``: set up the container's network; writes ``base/hosts`` and ``base/resolv.conf``.

    None for containers created before networks existed (no ``network`` in their config) and
    for ``none``/``host``, whose files ``create`` already wrote.
    """
    net = getattr(container.config, "network", None) or {}
    kind = net.get("kind")
    if kind not in ("bridge", "user", "container"):
        return None
    cfg = container.config
    joined = None
    if kind == "container":
        other = engine.containers.get(net["container"])
        pid = getattr(other.state, "pid", 0)
        if not pid or other.state.status not in ("running", "paused"):
            from dockerbank.errors import Conflict

            raise Conflict(f"cannot join network of a non running container: {other.id}")
        pinned = engine.networks.netns_path(other.id)
        joined = str(pinned) if pinned.exists() else f"/proc/{pid}/ns/net"
    mode = NetworkMode(kind, tuple(net.get("networks") or ()), net.get("container"))
    result = prepare_container_network(
        engine.networks, container.id, container.name, mode, hostname=cfg.hostname, ports=net.get("ports") or (),
        publish_all=net.get("publish_all", False), exposed=[*(cfg.exposed_ports or {}), *net.get("expose", [])],
        ip=net.get("ip"),
        aliases=net.get("aliases") or (), dns=net.get("dns") or (), dns_search=net.get("dns_search") or (),
        dns_options=net.get("dns_options") or (), add_hosts=[*(net.get("add_hosts") or ()), *link_hosts(engine, cfg)],
        joined_netns=joined, mac=getattr(cfg, "mac_address", "") or None, ip6=net.get("ip6"))
    if kind == "container" and not net.get("add_hosts") and not net.get("dns"):
        # docker's --network container:X (and a pod's member) sees X's /etc/hosts and resolv.conf
        owner_dir = engine.containers.dir(other.id)
        try:
            result.hosts = (owner_dir / "hosts").read_text() or result.hosts
            result.resolv = (owner_dir / "resolv.conf").read_text() or result.resolv
        except OSError:
            pass  # the files this container's own options make
    try:
        (base / "hosts").write_text(result.hosts)
        (base / "resolv.conf").write_text(result.resolv)
    except OSError:
        engine.networks.detach(container.id)
        raise
    return result


def link_hosts(engine, cfg) -> list[str]:
    """``--link TARGET:ALIAS`` as /etc/hosts entries (``--add-host`` values) for the linked containers
    that run with an address: docker's legacy links resolve the alias and the target's name."""
    from dockerbank.errors import DockerbankError

    entries: list[str] = []
    for link in getattr(cfg, "links", None) or []:
        target, _, alias = link.partition(":")
        try:
            other = engine.containers.get(target)
            if other.state.status not in ("running", "paused"):
                raise InvalidArgument(f"Cannot link to a non running container: /{other.name} AS {alias or target}")
            networks = engine.networks.settings(other.id).get("Networks") or {}
        except DockerbankError as exc:
            exc.exit_code = exc.exit_code or 125
            raise
        address = next((n.get("IPAddress") for n in networks.values() if n.get("IPAddress")), None)
        if address:
            entries += [f"{name}:{address}" for name in dict.fromkeys([alias or target, target])]
    return entries


def join_network(spec: dict[str, Any], result: ContainerNetwork | None) -> None:
    """Point the OCI spec's network namespace at the prepared one (no-op without a result)."""
    if result is None or result.namespace is None:
        return
    namespaces = spec.setdefault("linux", {}).setdefault("namespaces", [])
    for entry in namespaces:
        if entry.get("type") == "network":
            entry.clear()
            entry.update(result.namespace)
            return
    namespaces.append(dict(result.namespace))


def network_down(networks: NetworkService, container_id: str) -> None:
    """At exit, failed start and ``rm``: release addresses, ports, rules, veths and the netns.

    Never raises: the exit must be recorded anyway, and ``system check`` repairs what is left.
    """
    from dockerbank.errors import DockerbankError

    try:
        if networks.endpoints(container_id=container_id) or networks.netns_path(container_id).exists():
            networks.detach(container_id)
    except (DockerbankError, OSError):
        pass


def inspect_fields(engine, container) -> tuple[dict[str, Any], dict[str, Any]]:
    """(HostConfig fields, NetworkSettings fields) of ``docker inspect`` for a networked container."""
    from dockerbank.network.ports import parse_publish

    net = getattr(container.config, "network", None) or {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in net.get("ports") or []:
        for req in parse_publish(spec):
            host_port = "-".join(str(p) for p in (req.host_ports[0], req.host_ports[-1])) \
                if len(req.host_ports) > 1 else (str(req.host_ports[0]) if req.host_ports else "")
            bindings.setdefault(f"{req.container_port}/{req.protocol}", []).append(
                {"HostIp": req.host_ip, "HostPort": host_port})
    host = {
        "PortBindings": bindings, "PublishAllPorts": bool(net.get("publish_all")),
        "Dns": list(net.get("dns") or []), "DnsSearch": list(net.get("dns_search") or []),
        "DnsOptions": list(net.get("dns_options") or []), "ExtraHosts": list(net.get("add_hosts") or []) or None,
    }
    settings: dict[str, Any] = {}
    if container.state.status in ("running", "paused") and net.get("kind") in ("bridge", "user"):
        live = engine.networks.settings(container.id)
        if live.get("Networks"):
            settings = {k: v for k, v in live.items() if k not in ("DnsServers", "DnsSearch")}
            first = (net.get("networks") or [None])[0]
            if (net.get("ip") or net.get("ip6")) and first in settings["Networks"]:  # docker shows what was asked
                settings["Networks"][first]["IPAMConfig"] = {
                    **({"IPv4Address": net["ip"]} if net.get("ip") else {}),
                    **({"IPv6Address": net["ip6"]} if net.get("ip6") else {})}
    elif net.get("kind") in ("bridge", "user"):
        empty = {"IPAMConfig": None, "Links": None, "Aliases": None, "NetworkID": "", "EndpointID": "",
                 "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
                 "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": None}
        settings = {"Networks": {name: dict(empty) for name in net.get("networks") or []}}
        first = (net.get("networks") or [None])[0]
        if first is not None:  # what the container asked for, as docker shows it before the start
            if net.get("ip") or net.get("ip6"):
                settings["Networks"][first]["IPAMConfig"] = {
                    **({"IPv4Address": net["ip"]} if net.get("ip") else {}),
                    **({"IPv6Address": net["ip6"]} if net.get("ip6") else {})}
            settings["Networks"][first]["Aliases"] = list(net.get("aliases") or []) or None
    return host, settings
