"""Pure -p/-P parsing and host port assignment."""

from __future__ import annotations

import pytest

from dockerbank.errors import Conflict, InvalidArgument
from dockerbank.network.model import PortMapping, ports_shape
from dockerbank.network.ports import (
    PortRequest,
    assign_ports,
    format_port_line,
    format_ps_ports,
    parse_exposed,
    parse_publish,
)


@pytest.mark.parametrize("spec, expected", [
    ("80", [PortRequest("", (), 80, "tcp")]),
    ("8080:80", [PortRequest("", (8080,), 80, "tcp")]),
    ("127.0.0.1:8080:80/udp", [PortRequest("127.0.0.1", (8080,), 80, "udp")]),
    ("127.0.0.1::80", [PortRequest("127.0.0.1", (), 80, "tcp")]),
    ("0.0.0.0:8080:80", [PortRequest("", (8080,), 80, "tcp")]),
    ("[::1]:8080:80", [PortRequest("::1", (8080,), 80, "tcp")]),
    ("8000-8001:80-81", [PortRequest("", (8000,), 80, "tcp"), PortRequest("", (8001,), 81, "tcp")]),
    ("8000-8002:80", [PortRequest("", (8000, 8001, 8002), 80, "tcp")]),
    ("80-81/udp", [PortRequest("", (), 80, "udp"), PortRequest("", (), 81, "udp")]),
])
def test_parse_publish(spec, expected):
    assert parse_publish(spec) == expected


@pytest.mark.parametrize("spec", ["", "8080:", "abc", "70000", "1.2.3:80:80", "80/icmp", "8000-8002:80-81",
                                  "9-8:80", "a:b:c:d", "300.0.0.1:80:80"])
def test_parse_publish_refuses(spec):
    with pytest.raises(InvalidArgument):
        parse_publish(spec)


def test_parse_exposed():
    assert parse_exposed(["80/tcp", "53/udp", "7000-7001"]) == [
        PortRequest("", (), 80, "tcp"), PortRequest("", (), 53, "udp"),
        PortRequest("", (), 7000, "tcp"), PortRequest("", (), 7001, "tcp")]


def always(ip, port, proto):
    return True


def test_assign_fixed_and_conflicts_with_store_and_host():
    held = [PortMapping("", 8080, 80, "tcp")]
    with pytest.raises(Conflict, match=r"^Bind for 127.0.0.1:8080 failed: port is already allocated$"):
        assign_ports(parse_publish("127.0.0.1:8080:80"), held, always)
    # udp and another address family of the same port are no clash
    assert assign_ports(parse_publish("8080:80/udp"), held, always) == [PortMapping("", 8080, 80, "udp")]
    assert assign_ports(parse_publish("127.0.0.1:9090:80"), [PortMapping("127.0.0.2", 9090, 80)], always)
    with pytest.raises(Conflict, match="0.0.0.0:9000 failed"):
        assign_ports(parse_publish("9000:80"), [], lambda ip, port, proto: port != 9000)
    # two requests of one command line clash with each other
    with pytest.raises(Conflict):
        assign_ports(parse_publish("7000:80") + parse_publish("7000:81"), [], always)


def test_assign_free_port_from_range_or_ephemeral():
    got = assign_ports(parse_publish("8000-8002:80"), [PortMapping("", 8000, 1)], lambda ip, p, pr: p != 8001)
    assert got == [PortMapping("", 8002, 80, "tcp")]
    got = assign_ports(parse_publish("80") + parse_publish("81"), [], always, ephemeral=(40000, 40010))
    assert [m.host_port for m in got] == [40000, 40001]
    with pytest.raises(Conflict):
        assign_ports(parse_publish("80"), [], lambda *a: False, ephemeral=(40000, 40001))


def test_formats():
    mappings = [PortMapping("", 8080, 80, "tcp"), PortMapping("127.0.0.1", 5353, 53, "udp")]
    assert format_port_line(mappings[0]) == "80/tcp -> 0.0.0.0:8080"
    assert format_port_line(PortMapping("::1", 1, 2)) == "2/tcp -> [::1]:1"
    assert format_ps_ports(mappings) == "0.0.0.0:8080->80/tcp, 127.0.0.1:5353->53/udp"
    assert ports_shape(mappings) == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
                                     "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}]}
