"""Pure parts of the network layer: netavark's options/status JSON and /etc files."""

from __future__ import annotations

import pytest

from dockerbank.errors import InvalidArgument
from dockerbank.network.etcfiles import host_nameservers, hosts_file, parse_add_host, resolv_conf
from dockerbank.network.model import Endpoint, Network, PortMapping
from dockerbank.network.netavark import build_options, parse_status

NET = Network(id="ab" * 32, name="front", driver="bridge", created="x", subnet="10.9.0.0/24", gateway="10.9.0.1")
EP = Endpoint("cd" * 32, NET.id, "web", "10.9.0.2", "", "eth0", ("www",), (PortMapping("127.0.0.1", 8080, 80),))


def test_build_options_matches_netavark_schema():
    opts = build_options(EP.container_id, "web", "web", [(NET, EP)], EP.ports, ["9.9.9.9"])
    assert opts["networks"] == {NET.id: {"interface_name": "eth0", "static_ips": ["10.9.0.2"], "static_mac": None,
                                          "aliases": ["www"]}}
    info = opts["network_info"][NET.id]  # netavark hashes chain names from this: unique per root
    assert info["name"] == NET.id
    assert info["network_interface"] == "dbk" + "ab" * 6 and info["dns_enabled"] and not info["internal"]
    assert info["subnets"] == [{"subnet": "10.9.0.0/24", "gateway": "10.9.0.1"}]
    assert opts["port_mappings"] == [{"host_ip": "127.0.0.1", "host_port": 8080, "container_port": 80,
                                      "protocol": "tcp", "range": 1}]
    assert opts["dns_servers"] == ["9.9.9.9"]


def test_parse_status():
    status = {"front": {"dns_search_domains": ["dns.podman"], "dns_server_ips": ["10.9.0.1"],
                        "interfaces": {"eth0": {"mac_address": "aa:bb:cc:dd:ee:ff",
                                                "subnets": [{"gateway": "10.9.0.1", "ipnet": "10.9.0.2/24"}]}}}}
    got = parse_status(status)["front"]
    assert (got.ip, got.prefix, got.gateway, got.mac, got.dns_servers) == (
        "10.9.0.2", 24, "10.9.0.1", "aa:bb:cc:dd:ee:ff", ("10.9.0.1",))


def test_etc_files():
    text = hosts_file("abc123", ["10.9.0.2"], [("db", "10.9.0.7")])
    assert "127.0.0.1\tlocalhost" in text and "10.9.0.7\tdb\n" in text and text.endswith("10.9.0.2\tabc123\n")
    assert resolv_conf(["10.9.0.1"], ["dns.podman"]) == "search dns.podman\nnameserver 10.9.0.1\n"
    assert host_nameservers("nameserver 127.0.0.53\nnameserver 192.0.2.1\n# c\n") == ["192.0.2.1"]
    assert parse_add_host("db:10.0.0.7") == ("db", "10.0.0.7")
    for bad in ("db", "db:", "db:notanip", ":1.2.3.4"):
        with pytest.raises(InvalidArgument):
            parse_add_host(bad)


def test_parse_mode_and_port_requests():
    from dockerbank.network.runtime import parse_mode, port_requests

    assert parse_mode([]).kind == "bridge" and parse_mode(["default"]).networks == ("bridge",)
    assert parse_mode(["a", "b", "a"]).networks == ("a", "b")
    assert parse_mode(["container:db"]).docker_name == "container:db"
    assert parse_mode(["host"], ports=["80"]).kind == "host"
    for bad in ({"values": ["host", "a"]}, {"values": ["bridge"], "ip": "10.0.0.5"},
                {"values": [], "aliases": ["x"]}, {"values": ["container:db"], "publish_all": True},
                {"values": ["a"], "add_hosts": ["nocolon"]}, {"values": ["a"], "ports": ["x:y"]}):
        with pytest.raises(InvalidArgument):
            parse_mode(**bad)
    got = port_requests(["8080:80"], True, ["80/tcp", "443/tcp"])
    assert [(r.host_ports, r.container_port) for r in got] == [((8080,), 80), ((), 443)]
