"""IPAM beyond one IPv4 subnet (network.ipam, pure): IP ranges, IPv6 pools, docker's IPAM configs."""

from __future__ import annotations

import pytest

from dockerbank.errors import InvalidArgument


def test_ipam_pools_ranges_and_ipv6():
    import ipaddress

    from dockerbank.network import ipam

    subnet = ipaddress.ip_network("10.77.0.0/16")
    gateway = ipaddress.ip_address("10.77.0.1")
    assert str(ipam.allocate_address(subnet, gateway, [])) == "10.77.0.2"
    rng = ipam.parse_ip_range("10.77.5.128/25", subnet)
    assert str(ipam.allocate_address(subnet, gateway, ["10.77.5.128"], rng)) == "10.77.5.129"
    with pytest.raises(InvalidArgument, match="not within subnet"):
        ipam.parse_ip_range("10.78.0.0/24", subnet)
    v6 = ipam.parse_subnet6("fd00:77::/64")
    assert str(ipam.allocate_address(v6, ipaddress.ip_address("fd00:77::1"), ["fd00:77::2"])) == "fd00:77::3"
    assert str(ipam.ula_subnet("0123456789abcdef")) == "fd01:2345:6789::/64"
    assert ipam.create_arguments([{"Subnet": "10.1.0.0/24", "IPRange": "10.1.0.128/25"},
                                  {"Subnet": "fd00::/64", "Gateway": "fd00::1"}]) == {
        "ipv6": False, "subnet": "10.1.0.0/24", "gateway": None, "ip_range": "10.1.0.128/25",
        "subnet6": "fd00::/64", "gateway6": "fd00::1", "ip_range6": None}
    with pytest.raises(InvalidArgument, match="only one IPv4 subnet"):
        ipam.create_arguments([{"Subnet": "10.1.0.0/24"}, {"Subnet": "10.2.0.0/24"}])
    assert ipam.configs_from_flags(["10.1.0.0/24", "fd00::/64"], ["fd00::1", "10.1.0.254"], ["10.1.0.0/25"]) == [
        {"Subnet": "10.1.0.0/24", "Gateway": "10.1.0.254", "IPRange": "10.1.0.0/25"},
        {"Subnet": "fd00::/64", "Gateway": "fd00::1"}]
    with pytest.raises(InvalidArgument, match="no matching subnet for gateway 10.9.0.1"):
        ipam.configs_from_flags(["10.1.0.0/24"], ["10.9.0.1"], [])
