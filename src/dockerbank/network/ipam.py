"""Pure address management: pick free subnets and free addresses, validate static ones (IPv4, and
the IPv6 subnet a network may have besides).

No I/O here: callers pass what is taken (subnets of stored networks and of host routes,
addresses of stored endpoints), so the rules are unit-tested without a host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

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


def check_gateway(subnet: IPv4Network | IPv6Network, gateway: IPv4Address | IPv6Address) -> None:
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


def allocate_address(subnet, gateway, used: Iterable, within=None):
    """The lowest address of ``within`` (an IPRange; default the whole subnet) that is a usable
    address of ``subnet`` and neither the gateway nor used (IPv4 or IPv6)."""
    used_set = {ipaddress.ip_address(str(u)) for u in used if u}
    used_set.add(gateway)
    used_set.update((subnet.network_address, subnet.broadcast_address))
    pool = within if within is not None else subnet
    addr, last = pool.network_address, pool.broadcast_address
    while addr <= last:  # lazily: an IPv6 /64 has 2**64 of them
        if addr not in used_set:
            return addr
        addr += 1
    raise Conflict(f"no available IPv{subnet.version} addresses on network subnet {subnet}")


def parse_subnet6(text: str) -> IPv6Network:
    """An IPv6 subnet in CIDR form (host bits zero)."""
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise InvalidArgument(f"invalid subnet {text!r}: {exc}") from exc
    if not isinstance(net, IPv6Network):
        raise InvalidArgument(f"invalid subnet {text!r}: not an IPv6 subnet")
    if net.prefixlen > 126:
        raise InvalidArgument(f"invalid subnet {text!r}: a subnet needs room for a gateway and a container")
    return net


def parse_address6(text: str, what: str = "IPv6 address") -> IPv6Address:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError as exc:
        raise InvalidArgument(f"invalid {what} {text!r}") from exc
    if not isinstance(addr, IPv6Address):
        raise InvalidArgument(f"invalid {what} {text!r}: not an IPv6 address")
    return addr


def parse_ip_range(text: str, subnet):
    """An IPRange: a CIDR inside ``subnet`` (dynamic addresses are taken from it)."""
    try:
        pool = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise InvalidArgument(f"invalid ip-range {text!r}: {exc}") from exc
    if pool.version != subnet.version or not pool.subnet_of(subnet):
        raise InvalidArgument(f"ip-range {pool} is not within subnet {subnet}")
    return pool


def ula_subnet(seed: str) -> IPv6Network:
    """A /64 of the unique local fd00::/8 for a network asking for IPv6 without a subnet (newer
    dockerds do the same), its 40-bit global ID taken from ``seed`` (the network id's hex)."""
    global_id = int(seed[:10], 16)
    return IPv6Network(((0xFD << 120) | (global_id << 80), 64))


def check_static_address(addr, subnet, gateway, used: Iterable) -> None:
    """Refuse a requested --ip outside the subnet, equal to the gateway, or already handed out."""
    if addr.version != subnet.version or addr not in subnet or addr in (subnet.network_address,
                                                                        subnet.broadcast_address):
        raise InvalidArgument(f"invalid IP address {addr}: not a usable address of subnet {subnet}")
    if addr == gateway:
        raise Conflict(f"Address already in use: {addr} is the gateway of the network")
    if addr in {ipaddress.ip_address(str(u)) for u in used if u}:
        raise Conflict(f"Address already in use: {addr}")


def create_arguments(configs: list[dict], enable_ipv6: bool = False) -> dict:
    """docker's IPAM.Config list (``Subnet``/``Gateway``/``IPRange`` each) as the keyword arguments of
    ``NetworkService.create``: one IPv4 and one IPv6 pool at most (pure)."""
    result: dict = {"ipv6": bool(enable_ipv6)}
    seen: set[int] = set()
    for config in configs:
        subnet = config.get("Subnet") or ""
        if not subnet:
            if config.get("Gateway") or config.get("IPRange"):
                raise InvalidArgument("a gateway or ip-range needs a subnet")
            continue
        try:
            version = ipaddress.ip_network(subnet, strict=False).version
        except ValueError as exc:
            raise InvalidArgument(f"invalid subnet {subnet!r}: {exc}") from exc
        if version in seen:
            raise InvalidArgument(f"only one IPv{version} subnet per network is supported")
        seen.add(version)
        suffix = "6" if version == 6 else ""
        result[f"subnet{suffix}"] = subnet
        result[f"gateway{suffix}"] = config.get("Gateway") or None
        result[f"ip_range{suffix}"] = config.get("IPRange") or None
    return result


def configs_from_flags(subnets: Iterable[str], gateways: Iterable[str], ranges: Iterable[str]) -> list[dict]:
    """``--subnet``/``--gateway``/``--ip-range`` (repeatable) as IPAM configs: each gateway and range
    goes with the subnet that holds it, as the docker CLI pairs them (pure)."""
    configs = [{"Subnet": s} for s in subnets]
    for key, values in (("Gateway", gateways), ("IPRange", ranges)):
        for value in values:
            try:
                inner = ipaddress.ip_network(value, strict=False)
            except ValueError as exc:
                raise InvalidArgument(f"invalid {key.lower()} {value!r}: {exc}") from exc
            holder = next((c for c in configs if _holds(c["Subnet"], inner)), None)
            if holder is None:
                raise InvalidArgument(f"no matching subnet for {'gateway' if key == 'Gateway' else 'range'} {value}")
            if key in holder:
                raise InvalidArgument(f"cannot configure multiple {key.lower()}s for subnet {holder['Subnet']}")
            holder[key] = value
    return configs


def _holds(subnet: str, inner) -> bool:
    try:
        outer = ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        return False
    return outer.version == inner.version and inner.subnet_of(outer)
