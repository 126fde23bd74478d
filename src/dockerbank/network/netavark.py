"""The netavark driver: build its network-options JSON, run setup/teardown, parse its status.

netavark (Podman's network stack, Debian's ``/usr/lib/podman/netavark``) creates the bridge,
the veth pair, addresses, routes, the iptables/nft rules for masquerade and port forwarding,
and starts aardvark-dns for name resolution. Its input schema is ``NetworkOptions`` of
netavark's ``src/network/types.rs``; it prints a map network name -> ``StatusBlock``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dockerbank.errors import NotSupported, RuntimeFailure
from dockerbank.host.fs import flocked
from dockerbank.network.model import Endpoint, Network, PortMapping

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import Any

SEARCH_PATHS = ("/usr/lib/podman", "/usr/libexec/podman", "/usr/local/libexec/podman", "/usr/local/lib/podman")


def find_helper(name: str) -> str:
    """Locate netavark or aardvark-dns where Debian, Fedora or a source build put them."""
    for directory in SEARCH_PATHS:
        candidate = Path(directory) / name
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise NotSupported(f"{name} is not installed: install the Debian package {name} (scripts/setup.sh)")
    return found


@dataclass(frozen=True)
class Attachment:
    """What netavark reported for one network of a container."""

    network: str
    interface: str
    ip: str
    prefix: int
    gateway: str
    mac: str
    dns_servers: tuple[str, ...]
    dns_search: tuple[str, ...]


def network_info(network: Network) -> dict[str, Any]:
    """netavark's ``Network`` for one of ours.

    netavark names its iptables chains after a hash of the network *name*, so every root's
    ``bridge`` would share (and tear down) one set of chains: it gets the network id instead.
    """
    return {
        "name": network.id,
        "id": network.id,
        "driver": "bridge",
        "network_interface": network.interface,
        "subnets": [{"subnet": network.subnet, "gateway": network.gateway},
                    *([{"subnet": network.subnet6, "gateway": network.gateway6}] if network.subnet6 else [])],
        "ipv6_enabled": bool(network.subnet6),
        "internal": network.internal,
        "dns_enabled": network.dns_enabled,
        "options": {},
        "ipam_options": {"driver": "host-local"},
    }


def build_options(container_id: str, container_name: str, hostname: str | None,
                  attachments: Iterable[tuple[Network, Endpoint]],
                  ports: Iterable[PortMapping] = (), dns_servers: Iterable[str] = ()) -> dict[str, Any]:
    """The ``NetworkOptions`` document for setup or teardown (teardown needs the same one)."""
    networks: dict[str, Any] = {}
    info: dict[str, Any] = {}
    for network, endpoint in attachments:
        networks[network.id] = {
            "interface_name": endpoint.interface_name,
            "static_ips": [endpoint.ip, *([endpoint.ip6] if endpoint.ip6 else [])],
            "static_mac": endpoint.mac or None,
            "aliases": list(endpoint.aliases) if network.dns_enabled else [],
        }
        info[network.id] = network_info(network)
    options: dict[str, Any] = {
        "container_id": container_id,
        "container_name": container_name,
        "container_hostname": hostname or None,
        "networks": networks,
        "network_info": info,
        "port_mappings": [
            {"host_ip": p.host_ip, "host_port": p.host_port, "container_port": p.container_port,
             "protocol": p.protocol, "range": 1}
            for p in ports
        ],
    }
    dns = list(dns_servers)
    if dns:
        options["dns_servers"] = dns
    return options


def parse_status(status: dict[str, Any]) -> dict[str, Attachment]:
    """Map netavark's printed status to one Attachment per network (keyed as in the options: by id)."""
    result: dict[str, Attachment] = {}
    for name, block in status.items():
        interfaces = block.get("interfaces") or {}
        for ifname, iface in interfaces.items():
            subnets = iface.get("subnets") or []
            if not subnets:
                continue
            ip, _, prefix = subnets[0]["ipnet"].partition("/")
            result[name] = Attachment(
                network=name, interface=ifname, ip=ip, prefix=int(prefix or 32),
                gateway=subnets[0].get("gateway") or "", mac=iface.get("mac_address", ""),
                dns_servers=tuple(block.get("dns_server_ips") or ()),
                dns_search=tuple(block.get("dns_search_domains") or ()),
            )
            break
    return result


class Netavark:
    """Runs netavark; ``config_dir`` is where it keeps aardvark-dns's per-network files."""

    def __init__(self, config_dir: Path, binary: str | None = None, aardvark: str | None = None,
                 lock_path: Path | None = None):
        self.config_dir = config_dir
        self.binary = binary or find_helper("netavark")
        self.aardvark = aardvark or find_helper("aardvark-dns")
        # Host-wide by default: concurrent teardowns race on the shared iptables chains (seen
        # here: a FORWARD rule of a network left behind), whatever root they belong to.
        from dockerbank.host.rootless import net_prefix

        # rootless: the user's own network namespace (netavark and its rules run there)
        self.prefix = net_prefix()
        self.lock_path = lock_path or (Path("/run/lock/dockerbank-netavark.lock")
                                       if Path("/run/lock").is_dir() and not self.prefix
                                       else config_dir.parent / "netavark.lock")

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise network changes on this host (Podman does the same around netavark)."""
        with flocked(self.lock_path):
            yield

    def _run(self, command: str, netns: Path, options: dict[str, Any]) -> str:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        argv = [*self.prefix, self.binary, "--config", str(self.config_dir), "--aardvark-binary", self.aardvark, command, str(netns)]
        try:
            proc = subprocess.run(argv, input=json.dumps(options).encode(), capture_output=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeFailure(f"netavark {command} failed: {exc}") from exc
        out = proc.stdout.decode(errors="replace").strip()
        if proc.returncode != 0:
            message = out or proc.stderr.decode(errors="replace").strip()
            try:
                message = json.loads(out)["error"]
            except (ValueError, KeyError, TypeError):
                pass
            raise RuntimeFailure(f"netavark {command}: {message}")
        return out

    def setup(self, netns: Path, options: dict[str, Any]) -> dict[str, Attachment]:
        """Configure the namespace; returns what each network got."""
        out = self._run("setup", netns, options)
        try:
            return parse_status(json.loads(out))
        except (ValueError, KeyError, TypeError) as exc:
            raise RuntimeFailure(f"netavark setup printed an unexpected status: {out[:200]}") from exc

    def teardown(self, netns: Path, options: dict[str, Any]) -> None:
        """Undo setup: veths, firewall rules, port forwards; the bridge goes with its last endpoint
        (and with it the one rule the in-process driver adds to a network, when it set one up)."""
        self._run("teardown", netns, options)
        if not self.prefix:   # root: the in-process driver may have set this network up before
            from dockerbank.network.bridge import drop_extra_rules

            drop_extra_rules(options)
