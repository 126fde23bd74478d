"""Pure logic of the in-process bridge driver: netavark 1.4's rule text, the restore scripts made
from an ``iptables-save``, aardvark-dns's file format, the options it reads, netlink encoding."""

from __future__ import annotations

import hashlib
import struct

from dockerbank.network import iptrules, rtnl
from dockerbank.network.aardvark import Entry, entry_line, header_line, without_container
from dockerbank.network.bridge import Link, firewall_plans, status
from dockerbank.network.model import Endpoint, Network, PortMapping
from dockerbank.network.netavark import build_options

NAME = "4f" * 32
HASH = hashlib.sha512(NAME.encode()).hexdigest()[:13].upper()
CID = "ab" * 32

# what iptables-save (1.8.9, nf_tables) printed for netavark 1.4's rules of one container with
# -p 127.0.0.1:8080:80 on 10.89.0.0/24 (the lines below are copied from its output), plus the one rule
# the in-process driver adds (the DNAT accept in NETAVARK_FORWARD)
SAVED = f"""*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:NETAVARK_FORWARD - [0:0]
-A FORWARD -m comment --comment "netavark firewall plugin rules" -j NETAVARK_FORWARD
-A NETAVARK_FORWARD -d 10.89.0.0/24 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A NETAVARK_FORWARD -s 10.89.0.0/24 -j ACCEPT
-A NETAVARK_FORWARD -d 10.89.0.0/24 -m conntrack --ctstate DNAT -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:NETAVARK-{HASH} - [0:0]
:NETAVARK-DN-{HASH} - [0:0]
:NETAVARK-HOSTPORT-DNAT - [0:0]
:NETAVARK-HOSTPORT-MASQ - [0:0]
:NETAVARK-HOSTPORT-SETMARK - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j NETAVARK-HOSTPORT-DNAT
-A OUTPUT -m addrtype --dst-type LOCAL -j NETAVARK-HOSTPORT-DNAT
-A POSTROUTING -j NETAVARK-HOSTPORT-MASQ
-A POSTROUTING -s 10.89.0.0/24 -j NETAVARK-{HASH}
-A NETAVARK-{HASH} -d 10.89.0.0/24 -j ACCEPT
-A NETAVARK-{HASH} ! -d 224.0.0.0/4 -j MASQUERADE
-A NETAVARK-DN-{HASH} -s 10.89.0.0/24 -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j NETAVARK-HOSTPORT-SETMARK
-A NETAVARK-DN-{HASH} -s 127.0.0.1/32 -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j NETAVARK-HOSTPORT-SETMARK
-A NETAVARK-DN-{HASH} -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.89.0.2:80
-A NETAVARK-HOSTPORT-DNAT -p tcp -m tcp --dport 8080 -m comment --comment "dnat name: {NAME} id: {CID}" -j NETAVARK-DN-{HASH}
-A NETAVARK-HOSTPORT-MASQ -m comment --comment "netavark portfw masq mark" -m mark --mark 0x2000/0x2000 -j MASQUERADE
-A NETAVARK-HOSTPORT-SETMARK -j MARK --set-xmark 0x2000/0x2000
COMMIT
"""
MAPPING = PortMapping("127.0.0.1", 8080, 80, "tcp")


def test_rules_are_netavarks_text_as_iptables_save_prints_it():
    state = iptrules.Tables.parse(SAVED)
    plans = [iptrules.shared(False), iptrules.network(NAME, "10.89.0.0/24", False, with_ports=True),
             iptrules.Plan(rules=iptrules.ports(NAME, "10.89.0.0/24", CID, "10.89.0.2", [MAPPING], False))]
    for plan in plans:
        assert not state.missing(plan), [r.line for r in plan.rules if not state.has_rule(r)]
    assert iptrules.setup_script(state, plans) is None  # all there: no write at all


def test_a_netavark_made_network_gets_only_the_dnat_accept_added():
    netavarks = iptrules.Tables.parse(SAVED.replace(
        "-A NETAVARK_FORWARD -d 10.89.0.0/24 -m conntrack --ctstate DNAT -j ACCEPT\n", ""))
    plan = iptrules.network(NAME, "10.89.0.0/24", False, with_ports=True)
    assert netavarks.missing(plan)
    assert iptrules.setup_script(netavarks, [plan]) == (
        "*filter\n-A NETAVARK_FORWARD -d 10.89.0.0/24 -m conntrack --ctstate DNAT -j ACCEPT\nCOMMIT\n")


def test_setup_script_declares_only_missing_chains_and_inserts_position_rules():
    empty = iptrules.Tables.parse("*nat\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n*filter\n:FORWARD DROP [0:0]\nCOMMIT\n")
    script = iptrules.setup_script(empty, [iptrules.shared(False), iptrules.network(NAME, "10.89.0.0/24", False)])
    assert script is not None
    lines = script.splitlines()
    assert lines[0] == "*filter" and "COMMIT" in lines and lines[-1] == "COMMIT"
    assert ":NETAVARK_FORWARD - [0:0]" in lines and f":NETAVARK-{HASH} - [0:0]" in lines
    assert ":POSTROUTING - [0:0]" not in lines and ":FORWARD - [0:0]" not in lines   # existing: never declared
    assert "-I POSTROUTING 1 -j NETAVARK-HOSTPORT-MASQ" in lines
    assert f"-A POSTROUTING -s 10.89.0.0/24 -j NETAVARK-{HASH}" in lines
    # chain declarations come before the rules of their table
    nat = lines[lines.index("*nat"):]
    assert max(i for i, line in enumerate(nat) if line.startswith(":")) < min(
        i for i, line in enumerate(nat) if line.startswith("-"))


def test_teardown_script_deletes_what_exists_and_the_networks_chains_with_their_jumps():
    state = iptrules.Tables.parse(SAVED)
    mine = iptrules.ports(NAME, "10.89.0.0/24", CID, "10.89.0.2", [MAPPING], False)
    only_mine = iptrules.teardown_script(state, mine)
    assert only_mine is not None
    assert only_mine.count("-D ") == 4 and "-X" not in only_mine
    assert f'-D NETAVARK-HOSTPORT-DNAT -p tcp -m tcp --dport 8080 -m comment --comment "dnat name: {NAME} id: {CID}"' \
           f" -j NETAVARK-DN-{HASH}" in only_mine
    net = iptrules.network(NAME, "10.89.0.0/24", False, with_ports=True)
    complete = iptrules.teardown_script(state, [*mine, *net.rules], net.chains)
    assert complete is not None
    for chain in (f"NETAVARK-{HASH}", f"NETAVARK-DN-{HASH}"):
        assert f"-F {chain}\n-X {chain}" in complete
    assert complete.count(f"-D POSTROUTING -s 10.89.0.0/24 -j NETAVARK-{HASH}") == 1  # once, though listed twice
    assert "NETAVARK-HOSTPORT-SETMARK -j MARK" not in complete and "-D FORWARD" not in complete  # shared: kept
    gone = iptrules.Tables.parse("*nat\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n")
    assert iptrules.teardown_script(gone, [*mine, *net.rules], net.chains) is None   # idempotent


def test_port_rules_per_family_and_protocol():
    v6 = iptrules.ports(NAME, "fd00:1::/64", CID, "fd00:1::2", [PortMapping("", 53, 5353, "udp"), MAPPING], True)
    assert [r.spec for r in v6] == [
        f'-p udp -m udp --dport 53 -m comment --comment "dnat name: {NAME} id: {CID}" -j NETAVARK-DN-{HASH}',
        "-s fd00:1::/64 -p udp -m udp --dport 53 -j NETAVARK-HOSTPORT-SETMARK",
        "-s ::1/128 -p udp -m udp --dport 53 -j NETAVARK-HOSTPORT-SETMARK",
        "-p udp -m udp --dport 53 -j DNAT --to-destination [fd00:1::2]:5353",
    ]  # the 127.0.0.1 mapping is IPv4's alone
    assert iptrules.network(NAME, "fd00:1::/64", True).rules[1].spec == "! -d ff00::/8 -j MASQUERADE"


def _options(internal: bool = False, ipv6: bool = False, mac: str = "") -> dict:
    opts = {"_subnet6": "fd00:9::/64", "_gateway6": "fd00:9::1"} if ipv6 else {}
    network = Network(id=NAME, name="app", driver="bridge", created="", subnet="10.89.0.0/24", gateway="10.89.0.1",
                      internal=internal, options=opts)
    endpoint = Endpoint(container_id=CID, network_id=NAME, container_name="web", ip="10.89.0.2", mac=mac,
                        interface_name="eth0", aliases=("www",), ip6="fd00:9::2" if ipv6 else "")
    return build_options(CID, "web", "web", [(network, endpoint)], [MAPPING], ["9.9.9.9"])


def test_link_reads_netavarks_options_and_status_is_what_netavark_prints():
    link = Link.from_options(_options(ipv6=True, mac="02:00:00:00:00:01"), NAME)
    assert link.bridge == "dbk" + NAME[:12] and link.interface == "eth0" and link.mac == "02:00:00:00:00:01"
    assert link.families == (False, True) and link.aliases == ("www",) and link.dns
    assert len(link.host_veth(CID)) <= 15 and link.host_veth(CID) != link.host_veth("cd" * 32)
    got = status(link, "02:00:00:00:00:01", ["9.9.9.9"])
    assert (got.ip, got.prefix, got.gateway) == ("10.89.0.2", 24, "10.89.0.1")
    assert got.dns_servers == ("10.89.0.1", "fd00:9::1") and got.dns_search == ("dns.podman",)
    net, mine = firewall_plans(CID, link, [MAPPING], True)
    assert not mine.rules  # 127.0.0.1 is no IPv6 address
    assert ("nat", f"NETAVARK-DN-{HASH}") in net.chains


def test_aardvark_files_in_netavark_14s_format():
    entry = Entry(network=NAME, gateways=("10.89.0.1", "fd00:9::1"), container_id=CID, ipv4=("10.89.0.2",),
                  ipv6=("fd00:9::2",), names=("web", "www", CID[:12]))
    assert header_line(entry.gateways) == "10.89.0.1,fd00:9::1\n"
    assert header_line(["10.89.0.1"], ["1.1.1.1", "8.8.8.8"]) == "10.89.0.1 1.1.1.1,8.8.8.8\n"
    assert entry_line(entry) == f"{CID} 10.89.0.2 fd00:9::2 web,www,{CID[:12]}\n"
    v4only = Entry(NAME, ("10.89.0.1",), "cd" * 32, ("10.89.0.3",), (), ("db",), ("9.9.9.9",))
    assert entry_line(v4only) == f"{'cd' * 32} 10.89.0.3  db 9.9.9.9\n"   # empty ipv6 column kept
    text = header_line(entry.gateways) + entry_line(entry) + entry_line(v4only)
    assert without_container(text, CID) == header_line(entry.gateways) + entry_line(v4only)
    assert without_container(header_line(entry.gateways) + entry_line(entry), CID) is None  # header alone: deleted


def test_netlink_messages_are_encoded_as_the_kernel_reads_them():
    assert rtnl.attr(3, b"eth0\0") == struct.pack("=HH", 9, 3) + b"eth0\0" + b"\0" * 3
    parsed = rtnl.parse_attrs(rtnl.attr(3, b"eth0\0") + rtnl.nested(18, rtnl.attr(1, b"veth")))
    assert parsed[3] == b"eth0\0" and rtnl.parse_attrs(parsed[18])[1] == b"veth"
    mac = rtnl.random_mac()
    first = int(mac.split(":")[0], 16)
    assert first & 0x02 and not first & 0x01 and len(rtnl.mac_bytes(mac)) == 6


def test_mac_follows_the_address_as_dockers_does():
    from dockerbank.network.bridge import mac_for

    assert mac_for("172.17.0.2") == "02:42:ac:11:00:02"
    assert mac_for("10.90.1.130") == "02:42:0a:5a:01:82" and mac_for(None) is None


def test_dns_sockets_are_found_as_proc_net_udp_prints_them():
    from dockerbank.network import aardvark

    assert aardvark._proc_address("10.90.0.1", 53) == "01005A0A:0035"
    assert aardvark._proc_address("fd00::1", 53) == "000000FD000000000000000001000000:0035"
