"""Pure IPv4 address management: pick free subnets and free addresses, validate static ones.

No I/O here: callers pass what is taken (subnets of stored networks and of host routes,
addresses of stored endpoints), so the rules are unit-tested without a host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network

from dockerbank.errors import Conflict, InvalidArgument

# The default bridge takes the first free /16 of these. Not Podman's fixed 10.88/16 nor Docker's
# 172.17/16: both engines may run on the same host (the compat tests use them) and their
# bridges exist only while they have containers, so a route check at creation cannot see them.
# Past the three /16s, /24s of 10.64/12: several Dockerbank roots on one host (each with its
# own default bridge) must not run out of pools after three.
DEFAULT_BRIDGE_POOL: tuple[tuple[str, int], ...] = (
    ("10.85.0.0/16", 16), ("10.84.0.0/16", 16), ("10.83.0.0/16", 16), ("10.64.0.0/12", 24),
)
# User networks take the next free /24 of these, like Podman's 10.89.x/24; Docker's 172.18-31/16
# ranges are left to a Docker daemon that may run on the same host.
USER_POOL: tuple[tuple[str, int], ...] = (("10.90.0.0/15", 24), ("10.92.0.0/14", 24))


def parse_subnet(text: str) -> IPv4Network:
    """An IPv4 subnet in CIDR form; host bits must be zero like Docker requires."""
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise InvalidArgument(f"invalid subnet {text!r}: {exc}") from exc
    if not isinstance(net, IPv4Network):
        raise InvalidArgument(f"invalid subnet {text!r}: only IPv4 subnets are supported")
    if net.prefixlen > 30:
        raise InvalidArgument(f"invalid subnet {text!r}: a subnet needs room for a gateway and a container (/30 or larger)")
    return net


def parse_address(text: str, what: str = "IP address") -> IPv4Address:
    """One IPv4 address, or InvalidArgument naming what it was for."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError as exc:
        raise InvalidArgument(f"invalid {what} {text!r}") from exc
    if not isinstance(addr, IPv4Address):
        raise InvalidArgument(f"invalid {what} {text!r}: only IPv4 is supported")
    return addr


def default_gateway(subnet: IPv4Network) -> IPv4Address:
    """Docker's choice: the first host address of the subnet."""
    return subnet.network_address + 1


def check_gateway(subnet: IPv4Network, gateway: IPv4Address) -> None:
    """A gateway must be a host address inside its subnet."""
    if gateway not in subnet or gateway in (subnet.network_address, subnet.broadcast_address):
        raise InvalidArgument(f"gateway {gateway} is not a usable address of subnet {subnet}")


def overlapping(subnet: IPv4Network, taken: Iterable[IPv4Network]) -> IPv4Network | None:
    """The first of ``taken`` that overlaps ``subnet``, if any."""
    for other in taken:
        if subnet.overlaps(other):
            return other
    return None


def next_subnet(pool: Iterable[tuple[str, int]], taken: Iterable[IPv4Network]) -> IPv4Network:
    """The first subnet of the pool (base, prefix length) that overlaps nothing taken."""
    taken = list(taken)
    for base, prefix in pool:
        for candidate in IPv4Network(base).subnets(new_prefix=prefix):
            if overlapping(candidate, taken) is None:
                return candidate
    raise Conflict("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")


def allocate_address(subnet: IPv4Network, gateway: IPv4Address, used: Iterable[str | IPv4Address]) -> IPv4Address:
    """The lowest host address that is neither the gateway nor used."""
    used_set = {IPv4Address(str(u)) for u in used}
    used_set.add(gateway)
    for addr in subnet.hosts():
        if addr not in used_set:
            return addr
    raise Conflict(f"no available IPv4 addresses on network subnet {subnet}")


def check_static_address(addr: IPv4Address, subnet: IPv4Network, gateway: IPv4Address,
                         used: Iterable[str | IPv4Address]) -> None:
    """Refuse a requested --ip outside the subnet, equal to the gateway, or already handed out."""
    if addr not in subnet or addr in (subnet.network_address, subnet.broadcast_address):
        raise InvalidArgument(f"invalid IP address {addr}: not a usable address of subnet {subnet}")
    if addr == gateway:
        raise Conflict(f"Address already in use: {addr} is the gateway of the network")
    if addr in {IPv4Address(str(u)) for u in used}:
        raise Conflict(f"Address already in use: {addr}")
