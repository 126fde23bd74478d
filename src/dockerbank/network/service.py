"""NetworkService: networks in SQLite, endpoints set up by netavark in pinned namespaces.

Order of side effects (so a crash leaves only what ``cleanup`` can repair):
attach = reserve addresses and ports in one write transaction -> pin the netns -> netavark
setup; any failure undoes the setup, unpins the netns and deletes the rows before the error
is raised. detach = netavark teardown (from the stored rows) -> unpin the netns -> delete rows.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from pathlib import Path

from dockerbank.config import Config
from dockerbank.errors import (
    AmbiguousReference,
    Conflict,
    DockerbankError,
    InvalidArgument,
    NotFound,
    RuntimeFailure,
)
from dockerbank.network import ipam, netns
from dockerbank.network.firewall import ensure_isolation
from dockerbank.network.model import (
    BRIDGE_PREFIX,
    DEFAULT_NETWORK,
    GATEWAY6,
    IP_RANGE,
    IP_RANGE6,
    SUBNET6,
    Endpoint,
    Network,
    PortMapping,
    inspect_shape,
    ports_shape,
)
from dockerbank.network.ports import PortRequest, assign_ports
from dockerbank.state.db import Database

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    import builtins  # annotations in classes whose list() method hides the builtin
    from typing import Any

_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
PREDEFINED = ("bridge", "host", "none")
# Hidden option of networks whose subnet the store chose: while such a network has no endpoint,
# its bridge does not exist, so another root or engine may take the subnet meanwhile; at the next
# attach it moves to a free one instead of clashing (roots are independent stores on one host).
AUTO_SUBNET = "_dockerbank.auto_subnet"
RELEASE_WAIT = 3.0  # seconds an attach waits for a just-exited container to release a port or address


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _in_user_netns(ports: list[PortMapping]) -> list[PortMapping]:
    """The mappings netavark gets: rootless, a port arrives from slirp4netns at its tap address (the
    host address a port is published on is slirp4netns's to keep), so netavark matches any address."""
    from dockerbank.host.rootless import holder_pid

    if not ports or holder_pid() is None:
        return ports
    from dataclasses import replace

    return [replace(p, host_ip="") for p in ports]


def host_port_free(host_ip: str, port: int, protocol: str) -> bool:
    """Probe the host: can a socket bind this address now? (SO_REUSEADDR so TIME_WAIT is no obstacle.)"""
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    family = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    if protocol == "sctp":
        return True  # no portable probe; the store's own allocations still apply
    with socket.socket(family, kind) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host_ip or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))
        except OSError:
            return False
    return True


def host_route_subnets(route_file: Path = Path("/proc/net/route"), skip_iface: str = "") -> list[IPv4Network]:
    """Subnets the host routes somewhere already (docker0, podman0, LANs, other roots' bridges):
    never reuse them. Routes through ``skip_iface`` (a network's own bridge) do not count."""
    subnets: list[IPv4Network] = []
    try:
        lines = route_file.read_text().splitlines()[1:]
    except OSError:
        return subnets
    for line in lines:
        fields = line.split()
        if len(fields) < 8 or fields[0] == skip_iface:
            continue
        dest, mask = int(fields[1], 16), int(fields[7], 16)
        if mask == 0:
            continue  # the default route overlaps everything; it is no obstacle
        subnets.append(IPv4Network(f"{_le_ip(dest)}/{_le_ip(mask)}", strict=False))
    return subnets


def _le_ip(value: int) -> IPv4Address:
    """An address as /proc/net/route prints it (host byte order, little-endian here)."""
    return IPv4Address(int.from_bytes(value.to_bytes(4, "little"), "big"))


@dataclass
class AttachRequest:
    """What a container asks of the network layer at start."""

    container_id: str
    container_name: str
    networks: list[str] = field(default_factory=lambda: [DEFAULT_NETWORK])
    ports: list[PortRequest] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    ip: str | None = None
    hostname: str | None = None
    dns_servers: list[str] = field(default_factory=list)
    mac: str | None = None           # --mac-address: the first network's interface (netavark's static_mac)
    ip6: str | None = None           # --ip6: the first network's IPv6 address


class NetworkService:
    """create/list/inspect/remove/prune/connect/disconnect networks; attach/detach containers."""

    def __init__(self, config: Config, db: Database, host: Any = None, driver: Any = None):
        self.config = config
        self.db = db
        self.host = host
        self._driver = driver
        self.release_wait = RELEASE_WAIT

    # -- paths and driver ---------------------------------------------------------------
    @property
    def netns_dir(self) -> Path:
        return self.config.run_root / "netns"

    def netns_path(self, container_id: str) -> Path:
        """Where a container's network namespace is pinned (``SandboxKey``)."""
        return self.netns_dir / container_id

    @property
    def driver(self):
        if self._driver is None:
            self._driver = make_driver(self.config.run_root / "netavark")
        return self._driver

    def _change_lock(self):
        """The lock around one endpoint's set-up or teardown: netavark's host-wide one; none for
        the in-process driver, which locks per network itself."""
        if getattr(self.driver, "in_process", False):
            from contextlib import nullcontext

            return nullcontext()
        return self.driver.locked()

    def _reservation_lock(self, networks: builtins.list[Network]):
        """Host-wide while an idle network with a store-chosen subnet may move (two roots must not
        pick one subnet); otherwise the database's write transaction is enough (in-process driver)."""
        if getattr(self.driver, "in_process", False) and not any(
                n.options.get(AUTO_SUBNET) == "true" and not self.db.query_one(
                    "SELECT 1 FROM network_endpoints WHERE network_id = ? LIMIT 1", (n.id,)) for n in networks):
            from contextlib import nullcontext

            return nullcontext()
        return self.driver.locked()

    # -- networks -----------------------------------------------------------------------
    def _taken_subnets(self, conn) -> list[IPv4Network]:
        stored = [IPv4Network(row["subnet"]) for row in conn.execute("SELECT subnet FROM networks")]
        return stored + host_route_subnets()

    def _insert(self, conn, name: str, subnet: IPv4Network, gateway: IPv4Address, internal: bool,
                labels: dict[str, str], options: dict[str, str], driver: str = "bridge") -> Network:
        network = Network(id=secrets.token_hex(32), name=name, driver=driver, created=_now(),
                          subnet=str(subnet), gateway=str(gateway), internal=internal,
                          labels=dict(labels), options=dict(options))
        conn.execute(
            "INSERT INTO networks (id, name, driver, created, subnet, gateway, internal, labels, options)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (network.id, name, driver, network.created, network.subnet, network.gateway, int(internal),
             json.dumps(network.labels), json.dumps(network.options)))
        return network

    def default_network(self) -> Network:
        """The ``bridge`` network, created on first use (first free /16 of the default pool)."""
        row = self.db.query_one("SELECT * FROM networks WHERE name = ?", (DEFAULT_NETWORK,))
        if row is not None:
            return Network.from_row(row)
        with self.db.write() as conn:
            row = conn.execute("SELECT * FROM networks WHERE name = ?", (DEFAULT_NETWORK,)).fetchone()
            if row is not None:
                return Network.from_row(row)
            subnet = ipam.next_subnet(ipam.DEFAULT_BRIDGE_POOL, self._taken_subnets(conn))
            return self._insert(conn, DEFAULT_NETWORK, subnet, ipam.default_gateway(subnet), False, {},
                                {AUTO_SUBNET: "true"})

    def create(self, name: str, *, subnet: str | None = None, gateway: str | None = None,
               internal: bool = False, labels: dict[str, str] | None = None, driver: str = "bridge",
               options: dict[str, str] | None = None, ip_range: str | None = None, ipv6: bool = False,
               subnet6: str | None = None, gateway6: str | None = None, ip_range6: str | None = None) -> Network:
        """Create a user network; Docker's errors for bad names, duplicates and overlapping pools.

        ``ip_range`` narrows the dynamic IPv4 addresses; ``ipv6``/``subnet6`` give the network an
        IPv6 subnet besides (a unique local /64 when none is named), ``gateway6``/``ip_range6`` as for IPv4.
        """
        options = dict(options or {})
        # a network's own stored options given back (backup's restore) carry its pools
        kept = {key: options.pop(key, None) for key in (IP_RANGE, SUBNET6, GATEWAY6, IP_RANGE6, "_ipv6")}
        ip_range, subnet6 = ip_range or kept[IP_RANGE], subnet6 or kept[SUBNET6]
        gateway6, ip_range6 = gateway6 or kept[GATEWAY6], ip_range6 or kept[IP_RANGE6]
        v6 = self._ipv6_options(subnet6, gateway6, ip_range6, ipv6 or bool(subnet6))
        options.update(v6)
        if driver != "bridge":
            raise InvalidArgument(f"plugin \"{driver}\" not found: only the bridge driver is supported")
        if not _NAME_RE.match(name):
            raise InvalidArgument(f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        if name in PREDEFINED:
            raise Conflict(f"network with name {name} already exists" if name == DEFAULT_NETWORK
                           else f"{name} is a pre-defined network and cannot be created")
        if gateway and not subnet:
            raise InvalidArgument("a --gateway needs a --subnet")
        wanted = ipam.parse_subnet(subnet) if subnet else None
        gw = ipam.parse_address(gateway, "gateway") if gateway else None
        if wanted is not None:
            gw = gw or ipam.default_gateway(wanted)
            ipam.check_gateway(wanted, gw)
        if ip_range:
            if wanted is None:
                raise InvalidArgument("an ip-range needs a subnet")
            pool = ipam.parse_ip_range(ip_range, wanted)
            options[IP_RANGE] = str(pool)
            if not gateway:  # dockerd's choice: the range's first address, not the subnet's
                gw = pool.network_address if pool.network_address != wanted.network_address \
                    else pool.network_address + 1
        self.default_network()  # the default bridge takes its pool before any user network
        with self.db.write() as conn:
            if conn.execute("SELECT 1 FROM networks WHERE name = ?", (name,)).fetchone():
                raise Conflict(f"network with name {name} already exists")
            stored = [IPv4Network(row["subnet"]) for row in conn.execute("SELECT subnet FROM networks")]
            if wanted is not None:
                clash = ipam.overlapping(wanted, stored)
                if clash is not None:
                    raise Conflict(f"Pool overlaps with other one on this address space ({wanted} overlaps {clash})")
            else:
                wanted = ipam.next_subnet(ipam.USER_POOL, stored + host_route_subnets())
                gw = ipam.default_gateway(wanted)
                options = {**(options or {}), AUTO_SUBNET: "true"}
            assert gw is not None, "the given gateway or the subnet's default"
            if v6:
                self._check_subnet6(conn, v6)
            network = self._insert(conn, name, wanted, gw, internal, labels or {}, options)
            if v6 and SUBNET6 not in v6:  # IPv6 asked for without a subnet: a ULA /64 from the id
                subnet6_net = ipam.ula_subnet(network.id)
                options.pop("_ipv6", None)
                options.update({SUBNET6: str(subnet6_net), GATEWAY6: str(subnet6_net.network_address + 1)})
                conn.execute("UPDATE networks SET options = ? WHERE id = ?", (json.dumps(options), network.id))
                network = Network.from_row(conn.execute("SELECT * FROM networks WHERE id = ?", (network.id,)).fetchone())
        self._event("create", network)
        return network

    @staticmethod
    def _ipv6_options(subnet6: str | None, gateway6: str | None, ip_range6: str | None, enabled: bool) -> dict[str, str]:
        """The hidden options holding a network's IPv6 pool ({} for IPv4 only; {"_ipv6": ...} when the
        subnet is still to be chosen)."""
        if not enabled:
            if gateway6 or ip_range6:
                raise InvalidArgument("an IPv6 gateway or ip-range needs an IPv6 subnet")
            return {}
        if not subnet6:
            if gateway6 or ip_range6:
                raise InvalidArgument("an IPv6 gateway or ip-range needs an IPv6 subnet")
            return {"_ipv6": "true"}
        net6 = ipam.parse_subnet6(subnet6)
        gw6 = ipam.parse_address6(gateway6, "gateway") if gateway6 else net6.network_address + 1
        ipam.check_gateway(net6, gw6)
        result = {SUBNET6: str(net6), GATEWAY6: str(gw6)}
        if ip_range6:
            result[IP_RANGE6] = str(ipam.parse_ip_range(ip_range6, net6))
        return result

    def _check_subnet6(self, conn, v6: dict[str, str]) -> None:
        if SUBNET6 not in v6:
            return
        wanted = IPv6Network(v6[SUBNET6])
        for row in conn.execute("SELECT options FROM networks"):
            other = json.loads(row["options"]).get(SUBNET6)
            if other and IPv6Network(other).overlaps(wanted):
                raise Conflict(f"Pool overlaps with other one on this address space ({wanted} overlaps {other})")

    def list(self, filters: dict[str, list[str]] | None = None) -> list[Network]:
        """Networks, the default one first created; filters: name, id, label, driver, type, dangling."""
        self.default_network()
        networks = [Network.from_row(r) for r in self.db.query("SELECT * FROM networks ORDER BY created, name")]
        return [n for n in networks if self._matches(n, filters or {})]

    def _matches(self, network: Network, filters: dict[str, builtins.list[str]]) -> bool:
        for key, values in filters.items():
            if key == "name" and not any(v in network.name for v in values):
                return False
            if key == "id" and not any(network.id.startswith(v) for v in values):
                return False
            if key == "driver" and network.driver not in values:
                return False
            if key == "type":
                kind = "builtin" if network.name == DEFAULT_NETWORK else "custom"
                if kind not in values:
                    return False
            if key == "label":
                for value in values:
                    k, sep, v = value.partition("=")
                    if k not in network.labels or (sep and network.labels[k] != v):
                        return False
            if key == "dangling":
                dangling = not self.endpoints(network.id)
                if (values[-1].lower() in ("1", "true")) != dangling:
                    return False
        return True

    def get(self, ref: str) -> Network:
        """A network by name, full id or unique id prefix."""
        if ref == DEFAULT_NETWORK:
            return self.default_network()
        row = self.db.query_one("SELECT * FROM networks WHERE name = ? OR id = ?", (ref, ref))
        if row is not None:
            return Network.from_row(row)
        if re.fullmatch(r"[0-9a-f]{1,64}", ref):
            rows = self.db.query("SELECT * FROM networks WHERE id LIKE ?", (ref + "%",))
            if len(rows) == 1:
                return Network.from_row(rows[0])
            if len(rows) > 1:
                raise AmbiguousReference(f"network {ref} is ambiguous ({len(rows)} matches found based on ID prefix)")
        raise NotFound(f"No such network: {ref}")

    def endpoints(self, network_id: str | None = None, container_id: str | None = None) -> builtins.list[Endpoint]:
        sql = "SELECT * FROM network_endpoints WHERE 1=1"
        params: builtins.list[str] = []
        if network_id:
            sql, params = sql + " AND network_id = ?", params + [network_id]
        if container_id:
            sql, params = sql + " AND container_id = ?", params + [container_id]
        return [Endpoint.from_row(r) for r in self.db.query(sql + " ORDER BY rowid", tuple(params))]

    def inspect(self, ref: str) -> dict[str, Any]:
        """Docker's ``network inspect`` document."""
        network = self.get(ref)
        return inspect_shape(network, self.endpoints(network.id))

    def remove(self, ref: str) -> Network:
        """Remove a network without endpoints; the default bridge stays."""
        network = self.get(ref)
        if network.name == DEFAULT_NETWORK:
            raise Conflict(f"{network.name} is a pre-defined network and cannot be removed")
        self._release_removed(network)
        with self.db.write() as conn:
            if conn.execute("SELECT 1 FROM network_endpoints WHERE network_id = ?", (network.id,)).fetchone():
                raise Conflict(f"error while removing network: network {network.name} id {network.id} has active endpoints")
            conn.execute("DELETE FROM networks WHERE id = ?", (network.id,))
        self._event("destroy", network)
        return network

    def _release_removed(self, network: Network) -> None:
        """Endpoints of containers already removed (``run --rm``, ``rm -f``) whose teardown runs
        detached are waited for (up to ``release_wait``), so ``network rm`` right after works as
        with dockerd (whose removal tears down before it answers). They are not torn down here:
        an endpoint whose teardown never comes is a crash's leftover for ``system check``, and
        the remove refuses as for any endpoint."""
        def gone() -> builtins.list[str]:
            return [r["container_id"] for r in self.db.query(
                "SELECT DISTINCT container_id FROM network_endpoints WHERE network_id = ? AND container_id NOT IN "
                "(SELECT id FROM containers)", (network.id,))]

        deadline = time.monotonic() + self.release_wait
        while gone() and time.monotonic() < deadline:
            time.sleep(0.05)

    def _event(self, action: str, network: Network) -> None:
        from dockerbank.events.log import emit

        emit(self.config, "network", action, network.id, {"name": network.name, "type": network.driver})

    def prune(self, filters: dict[str, builtins.list[str]] | None = None) -> builtins.list[str]:
        """Remove every user network without endpoints; returns their names."""
        removed = []
        for network in self.list(filters):
            if network.name == DEFAULT_NETWORK or self.endpoints(network.id):
                continue
            try:
                self.remove(network.id)
            except Conflict:
                continue  # gained an endpoint meanwhile
            removed.append(network.name)
        return removed

    # -- endpoints ------------------------------------------------------------------------
    def _reserve(self, conn, container_id: str, container_name: str, network: Network, ip: str | None,
                 aliases: builtins.list[str], ports: builtins.list[PortMapping], index: int,
                 mac: str | None = None, ip6: str | None = None) -> Endpoint:
        subnet, gateway = IPv4Network(network.subnet), IPv4Address(network.gateway)
        rows = conn.execute("SELECT ip, ip6 FROM network_endpoints WHERE network_id = ?", (network.id,)).fetchall()
        used = [r["ip"] for r in rows]
        if ip:
            addr = ipam.parse_address(ip)
            ipam.check_static_address(addr, subnet, gateway, used)
        else:
            addr = ipam.allocate_address(subnet, gateway, used, IPv4Network(network.ip_range) if network.ip_range else None)
        addr6 = ""
        if network.subnet6:
            subnet6, gateway6 = IPv6Network(network.subnet6), ipam.parse_address6(network.gateway6)
            used6 = [r["ip6"] for r in rows]
            if ip6:
                wanted6 = ipam.parse_address6(ip6)
                ipam.check_static_address(wanted6, subnet6, gateway6, used6)
            else:
                wanted6 = ipam.allocate_address(subnet6, gateway6, used6,
                                                IPv6Network(network.ip_range6) if network.ip_range6 else None)
            addr6 = str(wanted6)
        elif ip6:
            raise InvalidArgument(f"Invalid address {ip6}: It does not belong to any of this network's subnets")
        names = [a for a in dict.fromkeys([*aliases, container_id[:12]]) if a and a != container_name]
        endpoint = Endpoint(container_id=container_id, network_id=network.id, container_name=container_name,
                            ip=str(addr), mac=mac or "", interface_name=f"eth{index}", aliases=tuple(names),
                            ports=tuple(ports), ip6=addr6)
        conn.execute(
            "INSERT INTO network_endpoints (container_id, network_id, container_name, ip, mac, interface_name,"
            " aliases, ports, created, ip6) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (container_id, network.id, container_name, endpoint.ip, endpoint.mac, endpoint.interface_name,
             json.dumps(list(endpoint.aliases)), json.dumps([p.to_dict() for p in ports]), _now(), addr6))
        return endpoint

    def _float_subnet(self, conn, network: Network) -> Network:
        """Move an idle network with a store-chosen subnet off a subnet the host now routes elsewhere."""
        if network.options.get(AUTO_SUBNET) != "true":
            return network
        if conn.execute("SELECT 1 FROM network_endpoints WHERE network_id = ? LIMIT 1", (network.id,)).fetchone():
            return network
        foreign = host_route_subnets(skip_iface=network.interface)
        if ipam.overlapping(IPv4Network(network.subnet), foreign) is None:
            return network
        stored = [IPv4Network(r["subnet"]) for r in conn.execute("SELECT subnet FROM networks WHERE id != ?",
                                                                  (network.id,))]
        pool = ipam.DEFAULT_BRIDGE_POOL if network.name == DEFAULT_NETWORK else ipam.USER_POOL
        subnet = ipam.next_subnet(pool, stored + foreign)
        gateway = str(ipam.default_gateway(subnet))
        conn.execute("UPDATE networks SET subnet = ?, gateway = ? WHERE id = ?", (str(subnet), gateway, network.id))
        return Network.from_row(conn.execute("SELECT * FROM networks WHERE id = ?", (network.id,)).fetchone())

    def _taken_ports(self, conn, exclude_container: str) -> builtins.list[PortMapping]:
        taken = []
        for row in conn.execute("SELECT container_id, ports FROM network_endpoints"):
            if row["container_id"] != exclude_container:
                taken += [PortMapping.from_dict(p) for p in json.loads(row["ports"])]
        return taken

    def _attached(self, container_id: str) -> builtins.list[tuple[Network, Endpoint]]:
        pairs = []
        for ep in self.endpoints(container_id=container_id):
            row = self.db.query_one("SELECT * FROM networks WHERE id = ?", (ep.network_id,))
            if row is not None:
                pairs.append((Network.from_row(row), ep))
        return pairs

    def attach(self, request: AttachRequest) -> dict[str, Any]:
        """Give a container its own netns on ``request.networks``, with its ports published.

        Returns the NetworkSettings-shaped dict (``SandboxKey`` is the netns path the OCI spec
        must join). Any failure leaves no rows, rules, veths or namespace behind.
        """
        if not request.networks:
            raise InvalidArgument("attach needs at least one network")
        if self.endpoints(container_id=request.container_id):
            raise Conflict(f"container {request.container_id[:12]} is already attached to networks")
        networks = [self.get(ref) for ref in request.networks]
        if len({n.id for n in networks}) != len(networks):
            raise InvalidArgument("a container can join each network only once")
        if request.ip and networks[0].name == DEFAULT_NETWORK:
            raise InvalidArgument("user specified IP address is supported on user defined networks only")
        if request.aliases and networks[0].name == DEFAULT_NETWORK:
            raise InvalidArgument("network-scoped alias is supported only for containers in user defined networks")
        deadline = time.monotonic() + self.release_wait
        while True:
            try:
                # under the host-wide lock: two roots moving idle networks must not pick one subnet
                with self._reservation_lock(networks):
                    pairs = self._reserve_all(request, networks)
                break
            except Conflict:
                # A container that just exited may still be releasing its port or address (its
                # teardown runs detached from the CLI): wait for that, not for anything else.
                if time.monotonic() > deadline or not self._store_holds(request):
                    raise
                time.sleep(0.1)
        return self._setup(request.container_id, request.container_name, request.hostname, pairs,
                           request.dns_servers, fresh_netns=True)

    def _reserve_all(self, request: AttachRequest, networks: builtins.list[Network]) -> builtins.list[tuple[Network, Endpoint]]:
        """Addresses and host ports of all networks in one write transaction (all or nothing)."""
        pairs: list[tuple[Network, Endpoint]] = []
        with self.db.write() as conn:
            networks = [self._float_subnet(conn, n) for n in networks]
            mappings = assign_ports(request.ports, self._taken_ports(conn, request.container_id), host_port_free)
            for index, network in enumerate(networks):
                endpoint = self._reserve(conn, request.container_id, request.container_name, network,
                                         request.ip if index == 0 else None,
                                         request.aliases if index == 0 else [],
                                         mappings if index == 0 else [], index,
                                         mac=request.mac if index == 0 else None,
                                         ip6=request.ip6 if index == 0 else None)
                pairs.append((network, endpoint))
        return pairs

    def _store_holds(self, request: AttachRequest) -> bool:
        """Whether the clash may be with a container of this store that is releasing its endpoints:
        no foreign program holds the ports, and some holder's namespace has no process left."""
        if request.ports:
            try:
                assign_ports(request.ports, [], host_port_free)
            except Conflict:
                return False
        holders = {r["container_id"] for r in self.db.query("SELECT DISTINCT container_id FROM network_endpoints")}
        holders.discard(request.container_id)
        return any(not _netns_in_use(self.netns_path(h)) for h in holders)

    def _setup(self, container_id: str, container_name: str, hostname: str | None,
               pairs: builtins.list[tuple[Network, Endpoint]], dns_servers: builtins.list[str], fresh_netns: bool) -> dict[str, Any]:
        from dockerbank.network.netavark import build_options

        path = self.netns_path(container_id)
        ports = [p for _, ep in pairs for p in ep.ports]
        options = build_options(container_id, container_name, hostname, pairs, _in_user_netns(ports), dns_servers)
        try:
            with self._change_lock():
                if not getattr(self.driver, "in_process", False):  # the in-process driver checks it in its one read
                    ensure_isolation(ipv6=any(n.subnet6 for n, _ in pairs))  # before the first veth exists
                if fresh_netns:
                    netns.create(path)
                status = self.driver.setup(path, options)
                if ports:
                    from dockerbank.host.rootless import publish

                    publish(ports)   # rootless: from the host into the user's network namespace
        except BaseException as exc:
            with self._change_lock():
                if ports:
                    from dockerbank.host.rootless import unpublish

                    unpublish(ports)
                self._undo(path, options, pairs, drop_netns=fresh_netns)
            if isinstance(exc, DockerbankError):
                raise
            raise RuntimeFailure(f"network setup failed: {exc}") from exc
        with self.db.write() as conn:
            for network, ep in pairs:
                got = status.get(network.id)
                if got is not None:
                    conn.execute("UPDATE network_endpoints SET mac = ? WHERE container_id = ? AND network_id = ?",
                                 (got.mac, container_id, network.id))
        return self.settings(container_id, status_dns=[d for a in status.values() for d in a.dns_servers],
                             status_search=[d for a in status.values() for d in a.dns_search])

    def _undo(self, path: Path, options: dict[str, Any], pairs: builtins.list[tuple[Network, Endpoint]], drop_netns: bool) -> None:
        """Best-effort rollback of a failed setup (netavark may have done part of it)."""
        if netns.is_pinned(path):
            try:
                self.driver.teardown(path, options)
            except DockerbankError:
                pass
            if drop_netns:
                netns.remove(path)
        elif drop_netns:
            path.unlink(missing_ok=True)
        with self.db.write() as conn:
            for network, ep in pairs:
                conn.execute("DELETE FROM network_endpoints WHERE container_id = ? AND network_id = ?",
                             (ep.container_id, network.id))

    def settings(self, container_id: str, status_dns: Iterable[str] = (), status_search: Iterable[str] = ()) -> dict[str, Any]:
        """Docker's ``NetworkSettings`` for a container from the stored endpoints."""
        return self._settings(container_id, self._attached(container_id), status_dns, status_search)

    def settings_of(self, container_ids: Iterable[str]) -> dict[str, tuple[dict[str, Any], builtins.list[PortMapping]]]:
        """(:meth:`settings`, :meth:`port_mappings`) of many containers from two queries (``GET
        /containers/json``: two per container made a list of 50 spend more time here than in
        everything else); only containers with endpoints are keys."""
        wanted = set(container_ids)
        networks: dict[str, Network] = {}
        by_container: dict[str, builtins.list[tuple[Network, Endpoint]]] = {}
        for ep in self.endpoints():
            if ep.container_id not in wanted:
                continue
            if not networks:
                networks = {n.id: n for n in (Network.from_row(r) for r in self.db.query("SELECT * FROM networks"))}
            if ep.network_id in networks:
                by_container.setdefault(ep.container_id, []).append((networks[ep.network_id], ep))
        return {cid: (self._settings(cid, pairs), [p for _, ep in pairs for p in ep.ports])
                for cid, pairs in by_container.items()}

    def _settings(self, container_id: str, pairs: builtins.list[tuple[Network, Endpoint]],
                  status_dns: Iterable[str] = (), status_search: Iterable[str] = ()) -> dict[str, Any]:
        ports = [p for _, ep in pairs for p in ep.ports]
        nets: dict[str, Any] = {}
        for network, ep in pairs:
            prefix = network.prefix
            nets[network.name] = {
                "IPAMConfig": None, "Links": None, "Aliases": list(ep.aliases) or None,
                "NetworkID": network.id, "EndpointID": ep.endpoint_id, "Gateway": network.gateway,
                "IPAddress": ep.ip, "IPPrefixLen": prefix, "IPv6Gateway": network.gateway6 if ep.ip6 else "",
                "GlobalIPv6Address": ep.ip6,
                "GlobalIPv6PrefixLen": int(network.subnet6.split("/")[1]) if ep.ip6 else 0,
                "MacAddress": ep.mac, "DriverOpts": None,
            }
        first = pairs[0] if pairs else None
        dns_servers = list(dict.fromkeys(status_dns))
        if not dns_servers:
            dns_servers = [n.gateway for n, _ in pairs if n.dns_enabled]
        return {
            "SandboxKey": f"{self.config.run_root}/netns/{container_id}" if pairs else "",  # netns_path, per row
            "Ports": ports_shape(ports),
            "IPAddress": first[1].ip if first else "",
            "IPPrefixLen": first[0].prefix if first else 0,
            "Gateway": first[0].gateway if first else "",
            "MacAddress": first[1].mac if first else "",
            "GlobalIPv6Address": first[1].ip6 if first else "",
            "GlobalIPv6PrefixLen": int(first[0].subnet6.split("/")[1]) if first and first[1].ip6 else 0,
            "IPv6Gateway": first[0].gateway6 if first and first[1].ip6 else "",
            "Networks": nets,
            "DnsServers": dns_servers,
            "DnsSearch": list(dict.fromkeys(status_search)),
        }

    def port_mappings(self, container_id: str) -> builtins.list[PortMapping]:
        """The host ports a container publishes (for ``port`` and ``ps``)."""
        return [p for ep in self.endpoints(container_id=container_id) for p in ep.ports]

    def port_mappings_of(self, container_ids: Sequence[str]) -> dict[str, builtins.list[PortMapping]]:
        """The host ports of many containers, a few queries in all (``ps`` of many)."""
        found: dict[str, builtins.list[PortMapping]] = {cid: [] for cid in container_ids}
        ids = list(found)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = self.db.query(f"SELECT * FROM network_endpoints WHERE container_id IN ({', '.join('?' * len(chunk))}) "
                                 "ORDER BY rowid", tuple(chunk))
            for row in rows:
                endpoint = Endpoint.from_row(row)
                found[endpoint.container_id].extend(endpoint.ports)
        return found

    def detach(self, container_id: str) -> None:
        """Tear down everything attach made; safe to call twice or after a crash."""
        pairs = self._attached(container_id)
        path = self.netns_path(container_id)
        if pairs:
            from dockerbank.network.netavark import build_options

            ports = [p for _, ep in pairs for p in ep.ports]
            options = build_options(container_id, pairs[0][1].container_name, None, pairs, _in_user_netns(ports))
            with self._change_lock():
                if ports:
                    from dockerbank.host.rootless import unpublish

                    unpublish(ports)
                self._teardown(path, options)
        netns.remove(path)
        with self.db.write() as conn:
            conn.execute("DELETE FROM network_endpoints WHERE container_id = ?", (container_id,))

    def _teardown(self, path: Path, options: dict[str, Any]) -> None:
        """netavark teardown; a namespace lost to a reboot or crash gets an empty stand-in,
        so the firewall rules and bridges still go (the in-process driver needs none)."""
        if getattr(self.driver, "in_process", False):
            self.driver.teardown(path, options)
            return
        stand_in = not netns.is_pinned(path)
        if stand_in:
            path.unlink(missing_ok=True)
            netns.create(path)
            # netavark deletes the container's interfaces before the network's rules and stops at
            # a missing one; stand-in veths of the same names (no dummy module everywhere) let it run to the end
            for spec in options["networks"].values():
                subprocess.run(["nsenter", f"--net={path}", "ip", "link", "add", spec["interface_name"], "type", "veth", "peer", "name", "standin-" + spec["interface_name"]],
                               capture_output=True, check=False)
        try:
            self.driver.teardown(path, options)
        except RuntimeFailure:
            if stand_in:
                return
            # an interface already gone (its pair deleted) stops netavark before the rules:
            # stand-in veths of the missing names let a second teardown run to the end
            present = subprocess.run(["nsenter", f"--net={path}", "ip", "-o", "link"], capture_output=True,
                                     text=True, check=False).stdout
            missing = [spec["interface_name"] for spec in options["networks"].values()
                       if f" {spec['interface_name']}@" not in present and f" {spec['interface_name']}:" not in present]
            if not missing:
                raise
            for name in missing:
                subprocess.run(["nsenter", f"--net={path}", "ip", "link", "add", name, "type", "veth", "peer", "name",
                                "standin-" + name], capture_output=True, check=False)
            self.driver.teardown(path, options)

    def connect(self, ref: str, container_id: str, container_name: str, aliases: Iterable[str] = (),
                ip: str | None = None, ip6: str | None = None) -> dict[str, Any]:
        """Join a running container (one with a pinned netns) to one more network."""
        network = self.get(ref)
        pairs = self._attached(container_id)
        if not netns.is_pinned(self.netns_path(container_id)):
            raise Conflict(f"container {container_name} is not running: start it to connect it to a network")
        if any(n.id == network.id for n, _ in pairs):
            raise Conflict(f"endpoint with name {container_name} already exists in network {network.name}")
        used_ifaces = {ep.interface_name for _, ep in pairs}
        index = next(i for i in range(len(used_ifaces) + 1) if f"eth{i}" not in used_ifaces)
        with self.db.write() as conn:
            endpoint = self._reserve(conn, container_id, container_name, network, ip, list(aliases), [], index,
                                     ip6=ip6)
        return self._setup(container_id, container_name, None, [(network, endpoint)], [], fresh_netns=False)

    def disconnect(self, ref: str, container_id: str, force: bool = False) -> None:
        """Take a container off one network (its veth, rules and address go)."""
        from dockerbank.network.netavark import build_options

        network = self.get(ref)
        pairs = [(n, ep) for n, ep in self._attached(container_id) if n.id == network.id]
        if not pairs:
            raise NotFound(f"container {container_id[:12]} is not connected to network {network.name}")
        path = self.netns_path(container_id)
        options = build_options(container_id, pairs[0][1].container_name, None, pairs,
                                _in_user_netns(list(pairs[0][1].ports)))
        if netns.is_pinned(path):
            try:
                with self._change_lock():
                    if pairs[0][1].ports:
                        from dockerbank.host.rootless import unpublish

                        unpublish(list(pairs[0][1].ports))   # rootless: the host's side of its ports
                    self.driver.teardown(path, options)
            except RuntimeFailure:
                if not force:
                    raise
        with self.db.write() as conn:
            conn.execute("DELETE FROM network_endpoints WHERE container_id = ? AND network_id = ?",
                         (container_id, network.id))

    # -- repair -----------------------------------------------------------------------------
    def cleanup(self, live_containers: Iterable[str] | None = None) -> builtins.list[str]:
        """``system check``: remove what a crash left. Returns one line per repair.

        - endpoints of containers not in ``live_containers`` (when given): torn down from their rows
          (firewall rules, veths, aardvark entries), with a stand-in netns if theirs is gone;
        - pinned namespaces without endpoint rows (and not live): unpinned and deleted;
        - bridges named ``dbk<id>`` of no stored network or of a network without endpoints: deleted.
        """
        repairs: list[str] = []
        live = set(live_containers) if live_containers is not None else None
        attached = {r["container_id"] for r in self.db.query("SELECT DISTINCT container_id FROM network_endpoints")}
        for container_id in sorted(attached):
            if live is not None and container_id in live:
                continue
            self.detach(container_id)
            repairs.append(f"removed network endpoints of container {container_id[:12]}")
        if self.netns_dir.is_dir():
            for path in sorted(self.netns_dir.iterdir()):
                if path.name in attached and (live is None or path.name in live):
                    continue
                if live is not None and path.name in live:
                    continue
                netns.remove(path)
                repairs.append(f"removed network namespace {path}")
        busy = {r["network_id"][:12] for r in self.db.query("SELECT DISTINCT network_id FROM network_endpoints")}
        if not busy:
            repairs += self._stop_stale_aardvark()
        for bridge in _host_bridges():
            if bridge.startswith(BRIDGE_PREFIX) and bridge[len(BRIDGE_PREFIX):] not in busy and self._ours(bridge):
                subprocess.run(["ip", "link", "delete", bridge], capture_output=True, check=False)
                repairs.append(f"removed bridge {bridge}")
        return repairs

    def _stop_stale_aardvark(self) -> builtins.list[str]:
        """An aardvark-dns of this root left running with no endpoint holds port 53 on gateway
        addresses that a later network may get again."""
        import os
        import signal

        config_dir = self.config.run_root / "netavark" / "aardvark-dns"
        try:
            pid = int((config_dir / "aardvark.pid").read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            return []
        if "aardvark-dns" not in cmdline or str(config_dir) not in cmdline:
            return []
        os.kill(pid, signal.SIGTERM)
        return [f"stopped aardvark-dns {pid} (no endpoints left)"]

    def _ours(self, bridge: str) -> bool:
        prefix = bridge[len(BRIDGE_PREFIX):]
        return self.db.query_one("SELECT 1 FROM networks WHERE id LIKE ?", (prefix + "%",)) is not None


BACKEND_ENV = "DOCKERBANK_NETWORK_BACKEND"


def make_driver(config_dir: Path):
    """The bridge driver: in-process (netlink + one iptables-restore per family) for root; netavark
    for rootless (its rules live in the user's namespace, reached through ``nsenter``) and when
    ``DOCKERBANK_NETWORK_BACKEND=netavark`` asks for the old road. Both write the same bridge,
    rules and aardvark-dns files, so either tears down what the other set up."""
    import os

    from dockerbank.host.rootless import net_prefix

    backend = os.environ.get(BACKEND_ENV, "").strip().lower() or "inprocess"
    if backend not in ("inprocess", "netavark"):
        raise InvalidArgument(f"{BACKEND_ENV}={backend!r}: use inprocess or netavark")
    if backend == "netavark" or net_prefix():
        from dockerbank.network.netavark import Netavark

        return Netavark(config_dir)
    from dockerbank.network.bridge import InProcessBridge

    return InProcessBridge(config_dir)


def _netns_in_use(path: Path) -> bool:
    """Whether any process lives in the network namespace pinned at ``path``."""
    import os

    try:
        inode = os.stat(path).st_ino
    except OSError:
        return False
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if os.stat(f"/proc/{entry.name}/ns/net").st_ino == inode:
                    return True
            except OSError:
                continue
    return False


def _host_bridges() -> list[str]:
    """Names of the host's bridge interfaces."""
    base = Path("/sys/class/net")
    return sorted(p.name for p in base.iterdir() if (p / "bridge").is_dir()) if base.is_dir() else []
