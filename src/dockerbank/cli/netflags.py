"""The network flags of ``create``/``run`` (``-p``, ``-P``, ``--expose``, ``--ip``, ``--dns*``, ...).

Apart from :mod:`dockerbank.cli.networks` so that every container command does not build the
``network`` command group at start-up.
"""

from __future__ import annotations

import click


def network_flags(func):
    """The network flags of ``create``/``run`` (``--network`` itself is the containers module's)."""
    options = [
        click.option("-p", "--publish", multiple=True, help="Publish a container's port(s) to the host"),
        click.option("-P", "--publish-all", is_flag=True, help="Publish all exposed ports to random ports"),
        click.option("--expose", multiple=True, help="Expose a port or a range of ports"),
        click.option("--ip", default=None, help="IPv4 address (e.g., 172.30.100.104)"),
        click.option("--network-alias", multiple=True, help="Add network-scoped alias for the container"),
        click.option("--dns", multiple=True, help="Set custom DNS servers"),
        click.option("--dns-search", multiple=True, help="Set custom DNS search domains"),
        click.option("--dns-option", multiple=True, help="Set DNS options"),
        click.option("--add-host", multiple=True, help="Add a custom host-to-IP mapping (host:ip)"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def network_options_from(kw: dict) -> dict:
    """The values of ``network_flags`` as ``network.runtime.validate_create`` takes them."""
    return {
        "ports": list(kw.get("publish") or ()), "publish_all": bool(kw.get("publish_all")),
        "expose": list(kw.get("expose") or ()), "ip": kw.get("ip"), "aliases": list(kw.get("network_alias") or ()),
        "dns": list(kw.get("dns") or ()), "dns_search": list(kw.get("dns_search") or ()),
        "dns_options": list(kw.get("dns_option") or ()), "add_hosts": list(kw.get("add_host") or ()),
    }
