"""Pure IPAM: subnet choice, address allocation, validation."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from dockerbank.errors import Conflict, InvalidArgument
from dockerbank.network import ipam
from dockerbank.network.firewall import CHAIN, JUMP, RULES, plan


def test_next_subnet_skips_taken_and_overlapping():
    taken = [IPv4Network("10.90.0.0/24"), IPv4Network("10.90.1.0/25"), IPv4Network("10.90.2.0/23")]
    assert ipam.next_subnet(ipam.USER_POOL, taken) == IPv4Network("10.90.4.0/24")
    assert ipam.next_subnet(ipam.DEFAULT_BRIDGE_POOL, [IPv4Network("10.85.5.0/24")]) == IPv4Network("10.84.0.0/16")


def test_next_subnet_exhausted():
    with pytest.raises(Conflict, match="non-overlapping"):
        ipam.next_subnet([("10.0.0.0/23", 24)], [IPv4Network("10.0.0.0/23")])


def test_allocate_lowest_free_never_gateway_or_used():
    subnet, gw = IPv4Network("10.1.0.0/29"), IPv4Address("10.1.0.1")
    assert ipam.allocate_address(subnet, gw, []) == IPv4Address("10.1.0.2")
    assert ipam.allocate_address(subnet, gw, ["10.1.0.2", "10.1.0.3"]) == IPv4Address("10.1.0.4")
    with pytest.raises(Conflict, match="no available"):
        ipam.allocate_address(subnet, gw, [f"10.1.0.{i}" for i in range(2, 7)])


def test_static_address_rules():
    subnet, gw = IPv4Network("10.1.0.0/24"), IPv4Address("10.1.0.1")
    ipam.check_static_address(IPv4Address("10.1.0.9"), subnet, gw, ["10.1.0.2"])
    with pytest.raises(Conflict, match="Address already in use"):
        ipam.check_static_address(IPv4Address("10.1.0.2"), subnet, gw, ["10.1.0.2"])
    with pytest.raises(Conflict):
        ipam.check_static_address(gw, subnet, gw, [])
    for bad in ("10.2.0.5", "10.1.0.0", "10.1.0.255"):
        with pytest.raises(InvalidArgument):
            ipam.check_static_address(IPv4Address(bad), subnet, gw, [])


@pytest.mark.parametrize("text", ["10.0.0.1/24", "nonsense", "fd00::/64", "10.0.0.0/31"])
def test_parse_subnet_refuses(text):
    with pytest.raises(InvalidArgument):
        ipam.parse_subnet(text)


def test_gateway_must_be_inside():
    subnet = ipam.parse_subnet("192.168.7.0/24")
    assert ipam.default_gateway(subnet) == IPv4Address("192.168.7.1")
    ipam.check_gateway(subnet, IPv4Address("192.168.7.254"))
    with pytest.raises(InvalidArgument):
        ipam.check_gateway(subnet, IPv4Address("192.168.8.1"))


def test_isolation_plan_is_idempotent():
    wanted = "\n".join(["-P FORWARD DROP", f"-N {CHAIN}", JUMP, "-A FORWARD -j NETAVARK_FORWARD", *RULES])
    assert plan(wanted) is None
    script = plan("-P FORWARD DROP\n-A FORWARD -j NETAVARK_FORWARD\n" + JUMP)
    assert script is not None
    assert f"-D FORWARD -j {CHAIN}" in script and f"-I FORWARD 1 -j {CHAIN}" in script
    assert plan("-P FORWARD ACCEPT").count("-I FORWARD 1") == 1
