"""netavark 1.4's iptables rules as text, and the one ``iptables-restore`` script that gets there (pure).

The in-process driver writes the rules netavark 1.4 writes (``src/firewall/varktables``; plus one:
an accept for connections DNAT'd to the network, see :func:`network`),
in the form ``iptables-save`` prints them, so that (a) a set-up by either driver is torn down by
either, (b) what exists is found by comparing lines of one ``iptables-save``, and (c) the rules
live in the kernel's ``ip filter``/``ip nat`` tables that iptables-nft and dockerd use: dockerd
sets the FORWARD policy to DROP, and only an ACCEPT in that same FORWARD chain lets a
container's traffic through (an nft table of our own could not override the other base chain's drop).

Chains: shared by every network on the host (never removed): ``NETAVARK_FORWARD`` (filter),
``NETAVARK-HOSTPORT-DNAT``/``-SETMARK``/``-MASQ`` (nat); per network, named after the first 13
hex digits (upper case) of the SHA-512 of the name netavark gets (our network *id*, so that
roots and podman on one host never share them): ``NETAVARK-<hash>`` (masquerade) and
``NETAVARK-DN-<hash>`` (port forwards).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from dockerbank.network.model import PortMapping

FORWARD_CHAIN = "NETAVARK_FORWARD"
HOSTPORT_DNAT, HOSTPORT_SETMARK, HOSTPORT_MASQ = "NETAVARK-HOSTPORT-DNAT", "NETAVARK-HOSTPORT-SETMARK", "NETAVARK-HOSTPORT-MASQ"
MARK = "0x2000"


def network_hash(name: str) -> str:
    """netavark's ``create_network_hash(name, 13)``."""
    return hashlib.sha512(name.encode()).hexdigest()[:13].upper()


@dataclass(frozen=True)
class Rule:
    """One rule as ``iptables-save`` prints it (``spec`` is what follows ``-A CHAIN``)."""

    table: str
    chain: str
    spec: str
    first: bool = False          # inserted at position 1 (netavark's "position" rules)

    @property
    def line(self) -> str:
        return f"-A {self.chain} {self.spec}"


@dataclass(frozen=True)
class Plan:
    """What one set-up or teardown needs in one family's tables."""

    chains: tuple[tuple[str, str], ...] = ()      # (table, chain) that must exist
    rules: tuple[Rule, ...] = ()                  # rules that must exist


def _host(address: str, v6: bool) -> str:
    return f"{address}/{128 if v6 else 32}" if "/" not in address else address


def shared(v6: bool) -> Plan:
    """The chains and rules every network uses (netavark's TeardownPolicy::Never)."""
    del v6  # the same text in both families
    return Plan(
        chains=(("filter", FORWARD_CHAIN), ("nat", HOSTPORT_DNAT), ("nat", HOSTPORT_SETMARK), ("nat", HOSTPORT_MASQ)),
        rules=(
            Rule("filter", "FORWARD", f'-m comment --comment "netavark firewall plugin rules" -j {FORWARD_CHAIN}'),
            Rule("nat", HOSTPORT_SETMARK, f"-j MARK --set-xmark {MARK}/{MARK}"),
            Rule("nat", HOSTPORT_MASQ, f'-m comment --comment "netavark portfw masq mark" -m mark --mark {MARK}/{MARK} -j MASQUERADE'),
            Rule("nat", "POSTROUTING", f"-j {HOSTPORT_MASQ}", first=True),
            Rule("nat", "PREROUTING", f"-m addrtype --dst-type LOCAL -j {HOSTPORT_DNAT}"),
            Rule("nat", "OUTPUT", f"-m addrtype --dst-type LOCAL -j {HOSTPORT_DNAT}"),
        ))


def network(name: str, subnet: str, v6: bool, with_ports: bool = False) -> Plan:
    """A network's masquerade and forward rules (netavark's TeardownPolicy::OnComplete); with
    ``with_ports`` its port-forward chain as well."""
    chain = f"NETAVARK-{network_hash(name)}"
    multicast = "ff00::/8" if v6 else "224.0.0.0/4"
    chains = [("nat", chain)] + ([("nat", dn_chain(name))] if with_ports else [])
    return Plan(chains=tuple(chains), rules=(
        Rule("nat", chain, f"-d {subnet} -j ACCEPT"),
        Rule("nat", chain, f"! -d {multicast} -j MASQUERADE"),
        Rule("nat", "POSTROUTING", f"-s {subnet} -j {chain}"),
        Rule("filter", FORWARD_CHAIN, f"-d {subnet} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
        Rule("filter", FORWARD_CHAIN, f"-s {subnet} -j ACCEPT"),
        # not netavark 1.4's: a published port reached from another host is forwarded (DNAT'd) to the
        # bridge; with dockerd's FORWARD policy DROP on the host nothing else accepts that first packet
        Rule("filter", FORWARD_CHAIN, f"-d {subnet} -m conntrack --ctstate DNAT -j ACCEPT"),
    ))


def dn_chain(name: str) -> str:
    return f"NETAVARK-DN-{network_hash(name)}"


def ports(name: str, subnet: str, container_id: str, container_ip: str, mappings: Iterable[PortMapping],
          v6: bool) -> tuple[Rule, ...]:
    """A container's port forwards on one network and family: from anywhere to a local address
    (PREROUTING and OUTPUT jump to HOSTPORT-DNAT), with the masquerade mark for connections
    from 127.0.0.1 and from the network itself (hairpin), as netavark 1.4 writes them."""
    chain = dn_chain(name)
    localhost = "::1/128" if v6 else "127.0.0.1/32"
    target = f"[{container_ip}]" if v6 else container_ip
    rules: list[Rule] = []
    for m in mappings:
        if m.host_ip and (":" in m.host_ip) != v6:
            continue  # an address of the other family
        dest = f" -d {_host(m.host_ip, v6)}" if m.host_ip else ""
        match = f"-p {m.protocol} -m {m.protocol} --dport {m.host_port}"
        rules += [
            Rule("nat", HOSTPORT_DNAT, f'{match} -m comment --comment "dnat name: {name} id: {container_id}" -j {chain}'),
            Rule("nat", chain, f"-s {subnet}{dest} {match} -j {HOSTPORT_SETMARK}"),
            Rule("nat", chain, f"-s {localhost}{dest} {match} -j {HOSTPORT_SETMARK}"),
            Rule("nat", chain, f"{dest.lstrip()}{' ' if dest else ''}{match} -j DNAT --to-destination {target}:{m.container_port}"),
        ]
    return tuple(rules)


@dataclass
class Tables:
    """One family's current state from ``iptables-save``: chains per table, rule lines per table."""

    chains: dict[str, set[str]]
    rules: dict[str, list[str]]

    @classmethod
    def parse(cls, text: str) -> Tables:
        chains: dict[str, set[str]] = {}
        rules: dict[str, list[str]] = {}
        table = ""
        for raw in text.splitlines():
            line = raw.strip()
            if line.startswith("*"):
                table = line[1:]
                chains.setdefault(table, set())
                rules.setdefault(table, [])
            elif line.startswith(":") and table:
                chains[table].add(line[1:].split()[0])
            elif line.startswith("-A ") and table:
                rules[table].append(line)
        return cls(chains, rules)

    def has_chain(self, table: str, chain: str) -> bool:
        return chain in self.chains.get(table, set())

    def has_rule(self, rule: Rule) -> bool:
        return rule.line in self.rules.get(rule.table, ())

    def filter_text(self) -> str:
        """The filter table's rules (``iptables -S``'s ``-A`` lines, for :func:`firewall.plan`)."""
        return "\n".join(self.rules.get("filter", ()))

    def missing(self, plan: Plan) -> bool:
        """Whether any chain or rule of ``plan`` is absent."""
        return (any(not self.has_chain(t, c) for t, c in plan.chains)
                or any(not self.has_rule(r) for r in plan.rules))


def setup_script(state: Tables, plans: Iterable[Plan]) -> str | None:
    """The ``iptables-restore --noflush`` script adding what ``plans`` need and ``state`` lacks
    (None when nothing is missing). Existing chains are never declared: a declaration flushes them."""
    by_table: dict[str, list[str]] = {}
    declared: set[tuple[str, str]] = set()
    added: set[tuple[str, str]] = set()
    for plan in plans:
        for table, chain in plan.chains:
            if not state.has_chain(table, chain) and (table, chain) not in declared:
                declared.add((table, chain))
                by_table.setdefault(table, []).insert(0, f":{chain} - [0:0]")
        for rule in plan.rules:
            if state.has_rule(rule) or (rule.table, rule.line) in added:
                continue
            added.add((rule.table, rule.line))
            by_table.setdefault(rule.table, []).append(f"-I {rule.chain} 1 {rule.spec}" if rule.first else rule.line)
    return _script(by_table)


def teardown_script(state: Tables, rules: Iterable[Rule], chains: Iterable[tuple[str, str]] = ()) -> str | None:
    """The script deleting ``rules`` that exist (one occurrence each, as ``iptables -D`` would) and
    then the ``chains`` that exist, with every rule jumping to them; None when nothing is there."""
    by_table: dict[str, list[str]] = {}
    deleted: set[tuple[str, str]] = set()
    for rule in rules:
        if state.has_rule(rule) and (rule.table, rule.line) not in deleted:
            deleted.add((rule.table, rule.line))
            by_table.setdefault(rule.table, []).append(f"-D {rule.chain} {rule.spec}")
    for table, chain in chains:
        if not state.has_chain(table, chain):
            continue
        for line in state.rules.get(table, ()):
            if line.endswith(f" -j {chain}") and (table, line) not in deleted:
                deleted.add((table, line))
                by_table.setdefault(table, []).append("-D" + line[2:])
        by_table.setdefault(table, []).extend([f"-F {chain}", f"-X {chain}"])
    return _script(by_table)


def _script(by_table: dict[str, list[str]]) -> str | None:
    if not by_table:
        return None
    out: list[str] = []
    for table in sorted(by_table):
        out += [f"*{table}", *by_table[table], "COMMIT"]
    return "\n".join(out) + "\n"
