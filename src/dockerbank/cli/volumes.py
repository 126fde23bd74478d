"""``dockerbank volume create|ls|inspect|rm|prune``: docker's flags, output and exit codes."""

from __future__ import annotations

import json
import sys

import click

from dockerbank.cli.common import engine_of, human_size, parse_pairs, print_formatted, print_table, render_template
from dockerbank.errors import DockerbankError, InvalidArgument, UsageError


def _filters(values: tuple[str, ...], flag: str = "-f, --filter") -> dict[str, list[str]]:
    """``--filter k=v`` grouped by key; ``label!=x`` becomes key ``label!``. Keys are checked by the store."""
    filters: dict[str, list[str]] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f'invalid argument "{item}" for "{flag}" flag: bad format of filter (expected name=value)')
        filters.setdefault(key, []).append(value)
    return filters


def ls_row(volume) -> dict:
    """The fields docker's ``volume ls --format`` knows (``system df -v`` fills in Links and Size)."""
    return {
        "Availability": "N/A", "Driver": volume.driver, "Group": "N/A",
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(volume.labels.items())),
        "Links": "N/A", "Mountpoint": volume.mountpoint, "Name": volume.name, "Scope": "local",
        "Size": "N/A", "Status": "N/A",
    }


def _arity(command: str, names: tuple[str, ...], at_least: int = 0, at_most: int | None = None) -> None:
    """docker's argument-count errors (exit 1, not click's 125)."""
    usage = {"create": "[OPTIONS] [VOLUME]", "inspect": "[OPTIONS] VOLUME [VOLUME...]",
             "rm": "[OPTIONS] VOLUME [VOLUME...]"}[command]
    if len(names) < at_least:
        need = f"at least {at_least} argument"
    elif at_most is not None and len(names) > at_most:
        need = f"at most {at_most} argument"
    else:
        return
    raise UsageError(f"\"dockerbank volume {command}\" requires {need}\nUsage:  dockerbank volume {command} {usage}",
                     exit_code=1)


def _fail_some(errors: list[str]) -> None:
    """Report each failed item on its own line, then exit 1 (docker does the same for batches)."""
    for message in errors:
        click.echo(f"Error: {message}", err=True)
    sys.exit(1)


@click.group("volume")
def volume() -> None:
    """Manage volumes: user data kept apart from containers and never deleted implicitly."""


@volume.command("create")
@click.argument("names", nargs=-1, metavar="[VOLUME]")
@click.option("-d", "--driver", default="local", show_default=True, help="Volume driver name.")
@click.option("--label", "labels", multiple=True, help="Set metadata for a volume (key=value).")
@click.option("-o", "--opt", "opts", multiple=True,
              help="Driver options: type=tmpfs,device=tmpfs,o=size=.. or type=none,o=bind,device=/path.")
@click.option("--name", "name_opt", default=None, hidden=True)
@click.pass_context
def create(ctx: click.Context, names: tuple[str, ...], driver: str, labels: tuple[str, ...], opts: tuple[str, ...],
           name_opt: str | None) -> None:
    """Create a volume (a random name when VOLUME is not given)."""
    _arity("create", names, at_most=1)
    name = names[0] if names else None
    if name and name_opt and name != name_opt:
        raise InvalidArgument("conflicting options: either specify --name or provide positional arg, not both")
    engine = engine_of(ctx)
    vol = engine.volumes.create(name or name_opt or None, driver=driver, labels=parse_pairs(labels), options=parse_pairs(opts),
                                anonymous=False)
    click.echo(vol.name)


@volume.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display volume names.")
@click.option("-f", "--filter", "filters", multiple=True,
              help="Filter output (dangling=true|false, name=, label=key[=value], driver=).")
@click.option("--format", "fmt", default=None, help="Format output: table, json, or a Go template.")
@click.pass_context
def ls(ctx: click.Context, quiet: bool, filters: tuple[str, ...], fmt: str | None) -> None:
    """List volumes."""
    from dockerbank.cli import gotypes

    volumes = engine_of(ctx).volumes.list(_filters(filters))
    if quiet:
        for vol in volumes:
            click.echo(vol.name)
        return
    rows = [ls_row(v) for v in volumes]
    print_formatted(rows, fmt, lambda items: print_table(["DRIVER", "VOLUME NAME"],
                                                         [[r["Driver"], r["Name"]] for r in items]), VOLUME_HEADERS,
                    go_type=gotypes.VOLUME_ROW)


VOLUME_HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
                  "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "Group": "GROUP",
                  "Availability": "AVAILABILITY", "Status": "STATUS"}


@volume.command("inspect")
@click.argument("names", nargs=-1, metavar="VOLUME [VOLUME...]")
@click.option("-f", "--format", "fmt", default=None, help="Format output with a Go template, or json.")
@click.pass_context
def inspect(ctx: click.Context, names: tuple[str, ...], fmt: str | None) -> None:
    """Display detailed information on one or more volumes."""
    from dockerbank.cli import gotypes

    _arity("inspect", names, at_least=1)
    store = engine_of(ctx).volumes
    found, errors = [], []
    for name in names:
        try:
            found.append(store.inspect(name))
        except DockerbankError as exc:
            errors.append(exc.message)
    if not fmt:
        click.echo(json.dumps(found, indent=4))
    elif fmt == "json":
        click.echo(json.dumps(found, separators=(",", ":")))
    else:
        for item in found:
            click.echo(render_template(fmt, gotypes.volume_document(item), parse_exit=64))
    if errors:
        _fail_some(errors)


@volume.command("rm")
@click.argument("names", nargs=-1, metavar="VOLUME [VOLUME...]")
@click.option("-f", "--force", is_flag=True, help="Do not fail on volumes that do not exist (in use still fails).")
@click.pass_context
def rm(ctx: click.Context, names: tuple[str, ...], force: bool) -> None:
    """Remove one or more volumes; a volume used by any container is refused."""
    _arity("rm", names, at_least=1)
    store = engine_of(ctx).volumes
    errors = []
    for name in names:
        try:
            store.remove(name, force=force)
        except DockerbankError as exc:
            errors.append(exc.message)
        else:
            click.echo(name)
    if errors:
        _fail_some(errors)


@volume.command("prune")
@click.option("-a", "--all", "prune_all", is_flag=True, help="Remove all unused volumes, not just anonymous ones.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--filter", "filters", multiple=True, help="Provide filter values (label=, label!=).")
@click.pass_context
def prune(ctx: click.Context, prune_all: bool, force: bool, filters: tuple[str, ...]) -> None:
    """Remove unused anonymous volumes (all unused ones with -a)."""
    parsed = _filters(filters, "--filter")
    if prune_all:
        parsed["all"] = ["true"]
    if not force:
        which = "all" if prune_all else "anonymous"
        click.echo(f"WARNING! This will remove {which} local volumes not used by at least one container.")
        # docker reads the answer from stdin whether or not it is a terminal; end of input means no
        click.echo("Are you sure you want to continue? [y/N] ", nl=False)
        answer = sys.stdin.readline()
        if answer.strip().lower() not in ("y", "yes"):
            return
    names, reclaimed = engine_of(ctx).volumes.prune(parsed)
    if names:
        click.echo("Deleted Volumes:")
        for name in names:
            click.echo(name)
        click.echo()
    click.echo(f"Total reclaimed space: {human_size(reclaimed)}")


volume.add_command(ls, "list")    # docker's aliases
volume.add_command(rm, "remove")

COMMANDS = {"volume": volume}
