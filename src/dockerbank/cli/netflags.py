"""The network flags of ``create``/``run`` (``-p``, ``-P``, ``--expose``, ``--ip``, ``--dns*``, ...).

Apart from :mod:`dockerbank.cli.networks` so that every container command does not build the
``network`` command group at start-up; declared as data (cli.flags) for click and the fast path.
"""

from __future__ import annotations

from dockerbank.cli.flags import BOOL, MULTI, Flag

# ``--network`` itself is among the containers' flags (cli.container_flags)
NETWORK_FLAGS = [
    Flag("-p", "--publish", kind=MULTI, help="Publish a container's port(s) to the host"),
    Flag("-P", "--publish-all", kind=BOOL, help="Publish all exposed ports to random ports"),
    Flag("--expose", kind=MULTI, help="Expose a port or a range of ports"),
    Flag("--ip", help="IPv4 address (e.g., 172.30.100.104)"),
    Flag("--ip6", help="IPv6 address (e.g., 2001:db8::33)"),
    Flag("--network-alias", kind=MULTI, help="Add network-scoped alias for the container"),
    Flag("--dns", kind=MULTI, help="Set custom DNS servers"),
    Flag("--dns-search", kind=MULTI, help="Set custom DNS search domains"),
    Flag("--dns-option", kind=MULTI, help="Set DNS options"),
    Flag("--add-host", kind=MULTI, help="Add a custom host-to-IP mapping (host:ip)"),
]


def network_options_from(kw: dict) -> dict:
    """The values of ``NETWORK_FLAGS`` as ``network.runtime.validate_create`` takes them."""
    return {
        "ports": list(kw.get("publish") or ()), "publish_all": bool(kw.get("publish_all")),
        "expose": list(kw.get("expose") or ()), "ip": kw.get("ip"), "ip6": kw.get("ip6"), "aliases": list(kw.get("network_alias") or ()),
        "dns": list(kw.get("dns") or ()), "dns_search": list(kw.get("dns_search") or ()),
        "dns_options": list(kw.get("dns_option") or ()), "add_hosts": list(kw.get("add_host") or ()),
    }
