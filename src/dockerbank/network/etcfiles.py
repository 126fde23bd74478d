"""Pure rendering of a container's /etc/hosts and /etc/resolv.conf from its network settings."""

from __future__ import annotations

from collections.abc import Iterable

from dockerbank.errors import InvalidArgument
from dockerbank.network.ipam import parse_address


def parse_add_host(spec: str) -> tuple[str, str]:
    """``--add-host name:ip`` (``host-gateway`` is refused: no fixed host address here)."""
    name, sep, ip = spec.partition(":")
    if not sep or not name or not ip:
        raise InvalidArgument(f"invalid argument {spec!r} for --add-host: expected HOST:IP")
    if ip == "host-gateway":
        raise InvalidArgument("--add-host host-gateway is not supported; give the address")
    parse_address(ip, "IP address for --add-host")
    return name, ip


def hosts_file(hostname: str, addresses: Iterable[str], extra_hosts: Iterable[tuple[str, str]] = (),
               aliases: Iterable[str] = ()) -> str:
    """Docker's /etc/hosts: localhost lines, extra hosts, then the container's own addresses."""
    lines = [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "ff00::0\tip6-mcastprefix",
        "ff02::1\tip6-allnodes",
        "ff02::2\tip6-allrouters",
    ]
    lines += [f"{ip}\t{name}" for name, ip in extra_hosts]
    names = " ".join(dict.fromkeys([hostname, *aliases]))
    lines += [f"{ip}\t{names}" for ip in addresses]
    return "\n".join(lines) + "\n"


def host_nameservers(resolv_text: str) -> list[str]:
    """Nameservers of the host's resolv.conf that a container can reach (no loopback ones)."""
    servers = []
    for line in resolv_text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver" and not parts[1].startswith("127.") and parts[1] != "::1":
            servers.append(parts[1])
    return servers


def resolv_conf(nameservers: Iterable[str], search: Iterable[str] = (), options: Iterable[str] = ()) -> str:
    """A resolv.conf; callers choose the servers (aardvark's, --dns, or the host's)."""
    lines = []
    search = list(search)
    if search:
        lines.append("search " + " ".join(search))
    lines += [f"nameserver {server}" for server in nameservers]
    options = list(options)
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"
