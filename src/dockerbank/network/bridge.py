"""The in-process bridge driver: what netavark 1.4 does for a bridge network, without the subprocess.

Same interface as :class:`~dockerbank.network.netavark.Netavark` (``setup(netns, options)`` ->
attachments, ``teardown(netns, options)``; ``options`` is netavark's ``NetworkOptions``) and the
same result on the host: bridge ``dbk<id>``, a veth pair whose peer is created inside the
container's namespace, addresses, default routes, the MAC, the sysctls netavark sets, netavark's
iptables rules and aardvark-dns's files. So an endpoint set up by netavark (before an upgrade, or
with ``DOCKERBANK_NETWORK_BACKEND=netavark``) is torn down by this driver and the other way round.

Work per container: a few netlink requests (:mod:`rtnl`), one ``iptables-save`` and one
``iptables-restore --noflush`` per address family (the whole firewall change is one transaction),
and aardvark-dns's file plus a SIGHUP for DNS-enabled networks.

Locking: one flock per network (``<config>/locks/<network id>``), shared while a container sets
up or tears down its own endpoint, exclusive to create or delete the bridge and the network's
chains. Nothing host-wide on that path: containers of different networks never wait for each
other, containers of one network only for the bridge's creation or deletion. A host-wide lock is
taken only when the chains every network shares (or the isolation chain) are missing: once per boot.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from ipaddress import ip_network
from pathlib import Path

from dockerbank.errors import RuntimeFailure
from dockerbank.host.fs import flocked
from dockerbank.network import iptrules, rtnl
from dockerbank.network.aardvark import AardvarkFiles, Entry
from dockerbank.network.model import PortMapping
from dockerbank.network.netavark import Attachment, find_helper

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import Any

HOST_LOCK = Path("/run/lock/dockerbank-netavark.lock")   # the same file the netavark driver takes
DNS_SEARCH = "dns.podman"                                # netavark's search domain in its status


@dataclass(frozen=True)
class Subnet:
    subnet: str
    gateway: str
    prefix: int
    v6: bool


@dataclass(frozen=True)
class Link:
    """One network of one container, from netavark's options."""

    id: str                   # netavark's network name (ours: the network id)
    bridge: str
    subnets: tuple[Subnet, ...]
    internal: bool
    dns: bool
    interface: str
    ips: tuple[str, ...]
    mac: str | None
    aliases: tuple[str, ...]

    @classmethod
    def from_options(cls, options: dict[str, Any], name: str) -> Link:
        info, per = options["network_info"][name], options["networks"][name]
        subnets = []
        for entry in info.get("subnets") or []:
            net = ip_network(entry["subnet"], strict=False)
            subnets.append(Subnet(str(net), entry.get("gateway") or "", net.prefixlen, net.version == 6))
        return cls(id=name, bridge=info["network_interface"], subnets=tuple(subnets),
                   internal=bool(info.get("internal")), dns=bool(info.get("dns_enabled")),
                   interface=per["interface_name"], ips=tuple(per.get("static_ips") or ()),
                   mac=per.get("static_mac") or None, aliases=tuple(per.get("aliases") or ()))

    def ip(self, v6: bool) -> str | None:
        return next((ip for ip in self.ips if (":" in ip) == v6), None)

    def subnet(self, v6: bool) -> Subnet | None:
        return next((s for s in self.subnets if s.v6 == v6), None)

    @property
    def families(self) -> tuple[bool, ...]:
        """The families (v6 flag) this link has an address in."""
        return tuple(v6 for v6 in (False, True) if self.ip(v6) and self.subnet(v6))

    def host_veth(self, container_id: str) -> str:
        """A host-side name no other endpoint has (15 characters at most)."""
        import hashlib

        return "veth" + hashlib.sha256(f"{container_id}/{self.id}".encode()).hexdigest()[:11]


def mac_for(ipv4: str | None) -> str | None:
    """Docker's MAC for an address: ``02:42`` and the IPv4 address's four bytes. An address handed
    out again a moment after its previous holder left keeps its MAC, so the neighbours' ARP entries
    (which the kernel will not override for ``locktime``, 1 s) stay right (with random MACs, a quick
    reuse answered to the old MAC and the new container could not reach its gateway)."""
    if not ipv4:
        return None
    return "02:42:" + ":".join(f"{int(part):02x}" for part in ipv4.split("."))


def firewall_plans(container_id: str, link: Link, mappings: list[PortMapping], v6: bool,
                   ) -> tuple[iptrules.Plan, iptrules.Plan]:
    """(the network's plan, the container's plan) of one family (pure)."""
    subnet, ip = link.subnet(v6), link.ip(v6)
    assert subnet is not None and ip is not None
    net = iptrules.network(link.id, subnet.subnet, v6, with_ports=bool(mappings))
    mine = iptrules.Plan(rules=iptrules.ports(link.id, subnet.subnet, container_id, ip, mappings, v6))
    return net, mine


def status(link: Link, mac: str, container_dns: list[str]) -> Attachment:
    """What netavark prints for one network (first address: IPv4)."""
    first = link.subnets[0]
    ip = link.ip(first.v6) or (link.ips[0] if link.ips else "")
    servers = tuple(s.gateway for s in link.subnets) if link.dns else tuple(container_dns)
    return Attachment(network=link.id, interface=link.interface, ip=ip, prefix=first.prefix, gateway=first.gateway,
                      mac=mac, dns_servers=servers, dns_search=(DNS_SEARCH,) if link.dns else ())


class InProcessBridge:
    """The driver (see the module's docstring); ``config_dir`` is netavark's (aardvark-dns's files)."""

    in_process = True

    def __init__(self, config_dir: Path, aardvark: str | None = None):
        self.config_dir = config_dir
        self.aardvark = AardvarkFiles(config_dir, aardvark or find_helper("aardvark-dns"))
        self.lock_dir = config_dir / "locks"

    # -- locks ---------------------------------------------------------------------------
    def locked(self) -> AbstractContextManager[None]:
        """The host-wide lock (the netavark driver's file): only for what every network shares."""
        return flocked(HOST_LOCK)

    @contextmanager
    def _network_locks(self, modes: dict[str, int]) -> Iterator[None]:
        """Each network's flock in its mode (LOCK_SH / LOCK_EX), taken in id order (no deadlock)."""
        with ExitStack() as stack:
            for network_id in sorted(modes):
                stack.enter_context(flocked(self.lock_dir / network_id, modes[network_id]))
            yield

    # -- set-up --------------------------------------------------------------------------
    def setup(self, netns: Path, options: dict[str, Any]) -> dict[str, Attachment]:
        """Configure the namespace for every network of ``options``; returns what each got.
        Errors are one-line RuntimeFailures; the caller tears down what a failed set-up left."""
        try:
            return self._setup(netns, options)
        except OSError as exc:   # a netlink refusal, a sysctl or lock file that cannot be written
            raise RuntimeFailure(f"network setup: {exc.strerror or exc}") from exc

    def teardown(self, netns: Path, options: dict[str, Any]) -> None:
        """Undo :meth:`setup` (or netavark's set-up): aardvark entries, the container's interfaces
        (when its namespace is still there), its rules; the bridge and the network's rules go with
        the last endpoint. Idempotent: what is already gone is skipped."""
        try:
            self._teardown(netns, options)
        except OSError as exc:
            raise RuntimeFailure(f"network teardown: {exc.strerror or exc}") from exc

    def _setup(self, netns: Path, options: dict[str, Any]) -> dict[str, Attachment]:
        container_id = options["container_id"]
        links = [Link.from_options(options, name) for name in options["networks"]]
        mappings = [PortMapping(p["host_ip"] or "", int(p["host_port"]), int(p["container_port"]), p["protocol"])
                    for p in options.get("port_mappings") or ()]
        modes = {link.id: fcntl.LOCK_SH for link in links}
        for _ in range(len(links) + 2):  # each round may only add exclusive locks
            with self._network_locks(modes):
                states = self._read_firewall(links)
                wanted = self._needs_exclusive(links, mappings, states, container_id)
                escalate = [n for n in wanted if modes[n] != fcntl.LOCK_EX]
                if escalate:
                    modes.update({n: fcntl.LOCK_EX for n in escalate})
                    continue  # released; taken again exclusively for the bridge or the network's chains
                macs = self._setup_links(netns, container_id, links, bool(mappings))
                self._setup_firewall(container_id, links, mappings, states)
                break
        else:
            raise RuntimeFailure("network setup: the network's bridge kept changing under us")
        dns_servers = list(options.get("dns_servers") or ())
        # aardvark-dns after the bridge has its gateway: it binds there
        self.aardvark.add(Entry(network=link.id, gateways=tuple(s.gateway for s in link.subnets),
                                container_id=container_id,
                                ipv4=tuple(ip for ip in link.ips if ":" not in ip),
                                ipv6=tuple(ip for ip in link.ips if ":" in ip),
                                names=(options["container_name"], *link.aliases),
                                dns_servers=tuple(dns_servers))
                          for link in links if link.dns)
        return {link.id: status(link, macs[link.id], dns_servers) for link in links}

    def _needs_exclusive(self, links: list[Link], mappings: list[PortMapping],
                         states: dict[bool, iptrules.Tables], container_id: str) -> list[str]:
        """Networks whose bridge or network-wide rules are missing (made under the exclusive lock)."""
        wanted = []
        for link in links:
            if not Path(f"/sys/class/net/{link.bridge}").exists():
                wanted.append(link.id)
                continue
            if link.internal:
                continue
            for v6 in link.families:
                net, _ = firewall_plans(container_id, link, mappings, v6)
                if states[v6].missing(net):
                    wanted.append(link.id)
                    break
        return wanted

    def _setup_links(self, netns: Path, container_id: str, links: list[Link], with_ports: bool) -> dict[str, str]:
        macs: dict[str, str] = {}
        rtnl.write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")
        if any(s.v6 for link in links for s in link.subnets):
            rtnl.write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1")
        with rtnl.Netlink() as host:
            for link in links:
                master = self._bridge(host, link)
                if link.internal:
                    rtnl.write_sysctl(f"/proc/sys/net/ipv4/conf/{link.bridge}/forwarding", "0")
                    if link.subnet(True):
                        rtnl.write_sysctl(f"/proc/sys/net/ipv6/conf/{link.bridge}/forwarding", "0")
                elif with_ports:  # DNAT from 127.0.0.1 to the bridge's network needs it
                    rtnl.write_sysctl(f"/proc/sys/net/ipv4/conf/{link.bridge}/route_localnet", "1")
                mac = link.mac or mac_for(link.ip(False)) or rtnl.random_mac()
                veth = link.host_veth(container_id)
                fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    try:
                        host.create_veth(veth, master, link.interface, fd, mac)
                    except rtnl.NetlinkError as exc:
                        if exc.errno != errno.EEXIST:
                            raise RuntimeFailure(f"network setup: create veth pair: {exc.strerror}") from exc
                        if not host.link(veth):
                            raise RuntimeFailure(f"network setup: interface {link.interface} already exists "
                                                 "in the container's namespace") from exc
                        host.delete(veth)  # a killed set-up's leftover of this very endpoint
                        host.create_veth(veth, master, link.interface, fd, mac)
                finally:
                    os.close(fd)
                if any(s.v6 for s in link.subnets):
                    rtnl.write_sysctl(f"/proc/sys/net/ipv6/conf/{veth}/accept_dad", "0")
                rtnl.in_netns(netns, functools.partial(_configure_inside, link=link))
                macs[link.id] = mac
        return macs

    def _bridge(self, host: rtnl.Netlink, link: Link) -> int:
        """The bridge's index, created (with its gateways, up) when missing (exclusive lock held)."""
        found = host.link(link.bridge)
        if found is not None:
            if host.link_kind(found[1]) != "bridge":
                raise RuntimeFailure(f"network setup: interface {link.bridge} exists and is not a bridge")
            return found[0]
        try:
            host.create_bridge(link.bridge)
        except rtnl.NetlinkError as exc:
            raise RuntimeFailure(f"network setup: create bridge {link.bridge}: {exc.strerror}") from exc
        if any(s.v6 for s in link.subnets):
            rtnl.write_sysctl(f"/proc/sys/net/ipv6/conf/{link.bridge}/accept_dad", "0")
            rtnl.write_sysctl(f"/proc/sys/net/ipv6/conf/{link.bridge}/accept_ra", "0")
        found = host.link(link.bridge)
        assert found is not None
        for s in link.subnets:
            if s.gateway:
                host.add_address(found[0], s.gateway, s.prefix)
        host.set_up(found[0])
        return found[0]

    def _setup_firewall(self, container_id: str, links: list[Link], mappings: list[PortMapping],
                        states: dict[bool, iptrules.Tables]) -> None:
        for v6 in (False, True):
            plans: list[iptrules.Plan] = []
            for link in links:
                if link.internal or v6 not in link.families:
                    continue
                plans += firewall_plans(container_id, link, mappings, v6)
            if not plans:
                continue
            state = states[v6]
            shared = iptrules.shared(v6)
            from dockerbank.network.firewall import plan as isolation_plan

            if state.missing(shared) or isolation_plan(state.filter_text()) is not None:
                self._ensure_shared(v6, shared)
                state = _read(v6)
            script = iptrules.setup_script(state, plans)
            if script:
                _restore(v6, script, lambda: iptrules.setup_script(_read(v6), plans))

    def _ensure_shared(self, v6: bool, shared: iptrules.Plan) -> None:
        """The isolation chain first in FORWARD, then the chains every network shares (rare: host lock)."""
        from dockerbank.network.firewall import ensure_isolation

        with self.locked():
            ensure_isolation(ipv6=v6)
            script = iptrules.setup_script(_read(v6), [shared])
            if script:
                _restore(v6, script, None)

    def _read_firewall(self, links: list[Link]) -> dict[bool, iptrules.Tables]:
        families = {v6 for link in links if not link.internal for v6 in link.families}
        return {v6: _read(v6) for v6 in families}

    # -- teardown --------------------------------------------------------------------------
    def _teardown(self, netns: Path, options: dict[str, Any]) -> None:
        container_id = options["container_id"]
        links = [Link.from_options(options, name) for name in options["networks"]]
        mappings = [PortMapping(p["host_ip"] or "", int(p["host_port"]), int(p["container_port"]), p["protocol"])
                    for p in options.get("port_mappings") or ()]
        self.aardvark.remove(container_id, [link.id for link in links if link.dns])
        from dockerbank.network.netns import is_pinned

        if is_pinned(netns):
            def remove_inside(nl: rtnl.Netlink) -> None:
                for link in links:
                    nl.delete(link.interface)
            rtnl.in_netns(netns, remove_inside)
        with rtnl.Netlink() as host:
            for link in links:
                host.delete(link.host_veth(container_id))  # gone with its peer, unless the netns was lost
        modes = {link.id: fcntl.LOCK_SH for link in links}
        for _ in range(len(links) + 2):  # each round may only add exclusive locks
            with self._network_locks(modes):
                last = [link for link in links if _bridge_empty(link.bridge)]
                escalate = [link.id for link in last if modes[link.id] != fcntl.LOCK_EX]
                if escalate:
                    modes.update({n: fcntl.LOCK_EX for n in escalate})
                    continue
                self._teardown_firewall(container_id, links, mappings, {link.id for link in last})
                if last:
                    with rtnl.Netlink() as host:
                        for link in last:
                            host.delete(link.bridge)
                return

    def _teardown_firewall(self, container_id: str, links: list[Link], mappings: list[PortMapping],
                           complete: set[str]) -> None:
        for v6 in (False, True):
            rules: list[iptrules.Rule] = []
            chains: list[tuple[str, str]] = []
            for link in links:
                subnet = link.subnet(v6)
                if link.internal or subnet is None:
                    continue
                ip = link.ip(v6)
                if ip:
                    rules += iptrules.ports(link.id, subnet.subnet, container_id, ip, mappings, v6)
                if link.id in complete:
                    net = iptrules.network(link.id, subnet.subnet, v6, with_ports=True)
                    rules += net.rules
                    chains += net.chains
            if not rules and not chains:
                continue
            state = _read(v6)
            by_id = [iptrules.Rule("nat", iptrules.HOSTPORT_DNAT, line.split(" ", 2)[2])
                     for line in state.rules.get("nat", ()) if line.startswith(f"-A {iptrules.HOSTPORT_DNAT} ")
                     and f" id: {container_id}\"" in line]
            script = iptrules.teardown_script(state, [*rules, *by_id], chains)
            if script:
                _restore(v6, script, lambda: iptrules.teardown_script(_read(v6), [*rules, *by_id], chains))


def drop_extra_rules(options: dict[str, Any]) -> None:
    """After a netavark teardown: the rules netavark does not know (the DNAT accept, which this
    driver adds to a network it set up) of every network whose bridge netavark removed."""
    try:
        for v6 in (False, True):
            extra = []
            for name in options["networks"]:
                link = Link.from_options(options, name)
                subnet = link.subnet(v6)
                if subnet is None or link.internal or Path(f"/sys/class/net/{link.bridge}").exists():
                    continue
                extra += [r for r in iptrules.network(link.id, subnet.subnet, v6).rules if "--ctstate DNAT" in r.spec]
            if extra:
                script = iptrules.teardown_script(_read(v6), extra)
                if script:
                    _restore(v6, script, lambda: iptrules.teardown_script(_read(v6), extra))
    except (OSError, RuntimeFailure, KeyError):
        pass  # best effort: an accept for a subnet without a bridge forwards nothing


def _configure_inside(nl: rtnl.Netlink, link: Link) -> None:
    """In the container's namespace: lo up, the interface's addresses, up, default routes."""
    lo = nl.link("lo")
    if lo is not None:
        nl.set_up(lo[0])
    found = nl.link(link.interface)
    if found is None:
        raise RuntimeFailure(f"network setup: {link.interface} did not appear in the container's namespace")
    index = found[0]
    for name, value in (("autoconf", "0"), *([("accept_dad", "0")] if any(s.v6 for s in link.subnets) else [])):
        try:
            rtnl.write_sysctl(f"/proc/sys/net/ipv6/conf/{link.interface}/{name}", value)
        except OSError:
            pass  # a kernel without IPv6, or a read-only /proc: netavark ignores it as well
    for ip in link.ips:
        subnet = link.subnet(":" in ip)
        if subnet is not None:
            nl.add_address(index, ip, subnet.prefix)
    nl.set_up(index)
    if not link.internal:
        for s in link.subnets:
            if s.gateway:
                nl.add_default_route(s.gateway)


def _bridge_empty(bridge: str) -> bool:
    """Whether the bridge has no port left, or is gone (a reboot, a deletion behind our back):
    then the network's chains go as well."""
    try:
        return not os.listdir(f"/sys/class/net/{bridge}/brif")
    except FileNotFoundError:
        return True


def _tool(v6: bool, name: str) -> str:
    return name.replace("iptables", "ip6tables") if v6 else name


def _read(v6: bool) -> iptrules.Tables:
    """One ``iptables-save`` of the family's nat and filter tables."""
    tool = _tool(v6, "iptables-save")
    try:
        done = subprocess.run([tool], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeFailure(f"network setup: {tool}: {exc}") from exc
    if done.returncode != 0:
        raise RuntimeFailure(f"network setup: {tool}: {done.stderr.strip()}")
    return iptrules.Tables.parse(done.stdout)


def _restore(v6: bool, script: str, replan: Any) -> None:
    """Apply one script atomically; when the tables changed under it (another process's
    transaction between our read and write), plan again from a fresh read (``replan``)."""
    tool = _tool(v6, "iptables-restore")
    for attempt in range(5):
        try:
            done = subprocess.run([tool, "-w", "--noflush"], input=script, capture_output=True, text=True,
                                  timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeFailure(f"network firewall: {tool}: {exc}") from exc
        if done.returncode == 0:
            return
        if replan is None or attempt == 4:
            message = (done.stderr.strip().splitlines() or ["failed"])[0]
            raise RuntimeFailure(f"network firewall: {tool}: {message}")
        time.sleep(0.01 * (attempt + 1))
        script = replan()
        if not script:
            return
