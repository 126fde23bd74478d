"""``dockerbank network create|ls|inspect|rm|connect|disconnect|prune`` and ``dockerbank port``."""

from __future__ import annotations

import json
import sys

import click

from dockerbank.cli.common import engine_of, parse_filters, parse_pairs, print_formatted, print_table, render_template
from dockerbank.errors import DockerbankError, InvalidArgument, NotFound


def _row(engine, network, no_trunc: bool) -> dict:
    return {
        "ID": network.id if no_trunc else network.id[:12], "Name": network.name, "Driver": network.driver,
        "Scope": "local", "IPv4": "true", "IPv6": "false", "Internal": "true" if network.internal else "false",
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(network.labels.items())), "CreatedAt": network.created,
    }


def _fail_some(errors: list[str]) -> None:
    for message in errors:
        click.echo(f"Error: {message}", err=True)
    sys.exit(1)


@click.group("network")
def network() -> None:
    """Manage networks: bridges with their own subnets, names resolved per network, closed by default."""


@network.command("create")
@click.argument("name")
@click.option("-d", "--driver", default="bridge", show_default=True, help="Driver to manage the network (bridge).")
@click.option("--subnet", "subnets", multiple=True, help="Subnet in CIDR format (one IPv4, one IPv6).")
@click.option("--gateway", "gateways", multiple=True, help="Gateway of a subnet.")
@click.option("--ip-range", "ranges", multiple=True, help="Allocate container IPs from a sub-range.")
@click.option("--ipv6", is_flag=True, help="Enable IPv6 networking.")
@click.option("--internal", is_flag=True, help="Restrict external access to the network.")
@click.option("--label", "labels", multiple=True, help="Set metadata on a network (key=value).")
@click.option("-o", "--opt", "opts", multiple=True, help="Driver-specific options (key=value).")
@click.pass_context
def create(ctx, name, driver, subnets, gateways, ranges, ipv6, internal, labels, opts) -> None:
    """Create a network; prints its ID."""
    from dockerbank.network.ipam import configs_from_flags, create_arguments

    pools = create_arguments(configs_from_flags(subnets, gateways, ranges), ipv6)
    created = engine_of(ctx).networks.create(name, internal=internal, labels=parse_pairs(labels), driver=driver,
                                             options=parse_pairs(opts), **pools)
    click.echo(created.id)


@network.command("ls")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output (name, id, label, driver, type, dangling).")
@click.option("--format", "fmt", default=None, help="Pretty-print networks using a Go template.")
@click.option("-q", "--quiet", is_flag=True, help="Only display network IDs.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the output.")
@click.pass_context
def ls(ctx, filters, fmt, quiet, no_trunc) -> None:
    """List networks."""
    from dockerbank.cli import gotypes

    engine = engine_of(ctx)
    parsed = parse_filters(filters, {"name", "id", "label", "driver", "type", "dangling", "scope"})
    parsed.pop("scope", None)
    rows = [_row(engine, n, no_trunc) for n in engine.networks.list(parsed)]
    if quiet:
        for row in rows:
            click.echo(row["ID"])
        return
    print_formatted(rows, fmt, lambda items: print_table(
        ["NETWORK ID", "NAME", "DRIVER", "SCOPE"], [[r["ID"], r["Name"], r["Driver"], r["Scope"]] for r in items]),
        {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE"}, go_type=gotypes.NETWORK_ROW)


@network.command("inspect")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", default=None, help="Format the output using a Go template.")
@click.option("-v", "--verbose", is_flag=True, help="Verbose output (same as without).")
@click.pass_context
def inspect(ctx, names, fmt, verbose) -> None:
    """Display detailed information on one or more networks."""
    from dockerbank.cli import gotypes

    engine = engine_of(ctx)
    found, errors = [], []
    for name in names:
        try:
            found.append(engine.networks.inspect(name))
        except NotFound:
            errors.append(f"No such network: {name}")
    if fmt:
        for doc in found:
            click.echo(render_template(fmt, gotypes.network_document(doc), parse_exit=64))
    else:
        click.echo(json.dumps(found, indent=4))
    if errors:
        _fail_some(errors)


@network.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Do not error if the network does not exist.")
@click.pass_context
def rm(ctx, names, force) -> None:
    """Remove one or more networks (not while containers use them)."""
    engine = engine_of(ctx)
    errors = []
    for name in names:
        try:
            engine.networks.remove(name)
            click.echo(name)
        except NotFound as exc:
            if not force:
                errors.append(exc.message)
        except DockerbankError as exc:
            errors.append(exc.message)
    if errors:
        _fail_some(errors)


@network.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--filter", "filters", multiple=True, help="Provide filter values (label=<key>=<value>).")
@click.pass_context
def prune(ctx, force, filters) -> None:
    """Remove all custom networks not used by at least one container."""
    if not force:
        click.echo("WARNING! This will remove all custom networks not used by at least one container.")
        if not click.confirm("Are you sure you want to continue?", default=False, show_default=False,
                             prompt_suffix=" [y/N] "):
            return
    removed = engine_of(ctx).networks.prune(parse_filters(filters, {"label", "until"}) if filters else None)
    if removed:
        click.echo("Deleted Networks:")
        for name in removed:
            click.echo(name)


@network.command("connect")
@click.argument("network_ref", metavar="NETWORK")
@click.argument("container")
@click.option("--alias", "aliases", multiple=True, help="Add network-scoped alias for the container.")
@click.option("--ip", default=None, help="IPv4 address (e.g., 172.30.100.104).")
@click.option("--ip6", default=None, help="IPv6 address (e.g., 2001:db8::33).")
@click.pass_context
def connect(ctx, network_ref, container, aliases, ip, ip6) -> None:
    """Connect a container to a network (one that does not run: at its next start)."""
    from dockerbank.network.runtime import connect_container

    connect_container(engine_of(ctx), network_ref, container, aliases, ip, ip6)


@network.command("disconnect")
@click.argument("network_ref", metavar="NETWORK")
@click.argument("container")
@click.option("-f", "--force", is_flag=True, help="Force the container to disconnect from a network.")
@click.pass_context
def disconnect(ctx, network_ref, container, force) -> None:
    """Disconnect a container from a network."""
    from dockerbank.network.runtime import disconnect_container

    disconnect_container(engine_of(ctx), network_ref, container, force)


@click.command("port")
@click.argument("container")
@click.argument("private_port", required=False)
@click.pass_context
def port(ctx, container, private_port) -> None:
    """List port mappings or a specific mapping for the container."""
    from dockerbank.network.ports import format_port_line

    engine = engine_of(ctx)
    found = engine.containers.get(container)
    name = found.name
    mappings = engine.networks.port_mappings(found.id)
    if private_port:
        number, _, proto = private_port.partition("/")
        proto = proto or "tcp"
        if not number.isdigit():
            raise InvalidArgument(f"Invalid port: {private_port}")
        chosen = [m for m in mappings if m.container_port == int(number) and m.protocol == proto]
        if not chosen:
            raise DockerbankError(f"No public port '{number}/{proto}' published for {name}")
        for m in chosen:
            click.echo(f"{m.host_ip or '0.0.0.0'}:{m.host_port}")
        return
    for m in sorted(mappings, key=lambda m: (m.container_port, m.protocol)):
        click.echo(format_port_line(m))


COMMANDS = {"network": network, "port": port}
