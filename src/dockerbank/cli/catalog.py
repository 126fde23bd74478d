"""``dockerbank catalog ls|show|lock|build|deploy|rm``: parse, call catalog.service, render."""

from __future__ import annotations

import click

from dockerbank.cli.common import echo, engine_of, print_table
from dockerbank.errors import DockerbankError

CONTEXT = {"help_option_names": ["-h", "--help"]}


def _service(ctx: click.Context, runner: bool = False):
    from dockerbank.catalog.service import CatalogService

    engine = engine_of(ctx)
    stack_runner = None
    if runner:
        from dockerbank.compose.runner import ComposeRunner

        stack_runner = ComposeRunner(engine, out=echo)
    return CatalogService(engine, runner=stack_runner, out=lambda text: echo(text, err=True))


@click.group("catalog", context_settings=CONTEXT)
def catalog() -> None:
    """Applications of biomedical research, built offline and deployed as stacks with backup and license."""


@catalog.command("ls", context_settings=CONTEXT)
@click.option("--deployed", is_flag=True, help="List the deployments instead of the entries")
@click.pass_context
def ls_cmd(ctx, deployed):
    """List the catalog's entries (or its deployments)."""
    if deployed:
        rows = _service(ctx, runner=True).deployments()
        print_table(["PROJECT", "ENTRY", "VERSION", "STATE"],
                    [[r["project"], r["entry"], r["version"], r["state"]] for r in rows])
        return
    service = _service(ctx)
    rows = []
    for entry in service.catalog.entries():
        source = "user file" if entry.user_files() else "Debian"
        rows.append([entry.name, entry.version, entry.license, "yes" if entry.redistributable else "no",
                     source, entry.title])
    print_table(["NAME", "VERSION", "LICENSE", "REDISTRIBUTABLE", "SOURCE", "DESCRIPTION"], rows)


@catalog.command("show", context_settings=CONTEXT)
@click.argument("name")
@click.pass_context
def show_cmd(ctx, name):
    """Show what an entry is, its license, source, volumes, backup recipes and settings."""
    service = _service(ctx)
    entry = service.catalog.get(name)
    echo(f"{entry.name}: {entry.title} {entry.version}")
    echo(f"  purpose:          {entry.purpose}")
    echo(f"  license:          {entry.license} ({'redistributable' if entry.redistributable else 'NOT redistributable: its images stay in private registries'})")
    echo(f"  source:           {entry.source}")
    if entry.packages:
        echo(f"  Debian packages:  {' '.join(entry.packages)}")
    _show_pins(service, entry)
    for wanted in entry.user_files():
        echo(f"  user file:        {wanted.what} ({wanted.pattern}) from {wanted.origin}; "
             f"put it into {service.sources_dir(entry)}/ or pass --source")
    echo("  images:")
    for owner, image in service.catalog.images_for(entry):
        echo(f"    {image.tag}" + (f" (from entry {owner.name})" if owner.name != entry.name else ""))
    echo("  services:")
    for svc in entry.services():
        ports = ", ".join(entry.ports_of(svc)) or "none"
        echo(f"    {svc}: health: {entry.health_of(svc)}; ports: {ports}; backup: {entry.backup_of(svc)}")
    echo("  volumes:")
    for key, what in entry.volumes.items():
        echo(f"    {key}: {what}")
    if entry.resources:
        echo("  resources:        " + ", ".join(f"{k} {v}" for k, v in entry.resources.items()))
    echo("  settings (--set KEY=VALUE):")
    for key, setting in entry.settings.items():
        if setting.secret:
            how = "secret, generated when not given"
        elif setting.default is None:
            how = "required"
        else:
            how = f"default {setting.default}"
        echo(f"    {key}: {setting.help} ({how})")


def _show_pins(service, entry) -> None:
    """The exact versions the entry's images install, from the locks of the entries that build them."""
    import textwrap

    seen = set()
    for owner, image in service.catalog.images_for(entry):
        if not image.apt or owner.name in seen:
            continue
        seen.add(owner.name)
        try:
            found = service.locked(owner)
        except DockerbankError as exc:
            echo(f"  pinned:           none ({exc.message})")
            continue
        assert found is not None
        lock, digest = found
        versions = dict(lock.pins)
        echo(f"  pinned ({image.tag}): {len(lock.pins)} packages on {lock.base} {lock.base_id[:19]}, "
             f"lock {digest[:19]}")
        echo("\n".join(textwrap.wrap(" ".join(f"{name}={versions.get(name, '(base)')}" for name in lock.requested),
                                     width=110, initial_indent="    ", subsequent_indent="    ",
                                     break_on_hyphens=False)))
        deps = [f"{name}={version}" for name, version in lock.pins if name not in lock.requested]
        if deps:
            echo("\n".join(textwrap.wrap("and: " + " ".join(deps), width=110, initial_indent="    ",
                                         subsequent_indent="      ", break_on_hyphens=False)))


@catalog.command("lock", context_settings=CONTEXT)
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Lock every entry that installs Debian packages")
@click.pass_context
def lock_cmd(ctx, names, all_):
    """Pin an entry's Debian packages (and their dependencies) to the versions the mirror has now."""
    from dockerbank.errors import UsageError

    if bool(names) == all_:
        raise UsageError("give entry names or --all")
    for report in _service(ctx).lock(None if all_ else list(names)):
        state = "written" if report.changed else "unchanged"
        echo(f"{report.entry.name}: {len(report.lock.pins)} packages pinned on {report.lock.base} "
             f"({report.path}, {state})")


@catalog.command("build", context_settings=CONTEXT)
@click.argument("name")
@click.option("--source", default=None, help="The file the entry is built from, when it needs one")
@click.option("--sha256", default=None, help="The SHA-256 that file must have")
@click.option("--force", is_flag=True, help="Build the images again, without the build cache, even when they exist")
@click.option("-q", "--quiet", is_flag=True, help="Do not show the builds' output")
@click.pass_context
def build_cmd(ctx, name, source, sha256, force, quiet):
    """Build an entry's images here (from Debian packages, or from the user's file)."""
    from dockerbank.engine.sinks import FdSink

    report = _service(ctx).build(name, source, sha256, force, None if quiet else FdSink(2))
    for tag, image_id in report.present:
        echo(f"{tag} {image_id[:19]} (present)")
    for tag, image_id in report.built:
        echo(f"{tag} {image_id[:19]} (built)")


@catalog.command("deploy", context_settings=CONTEXT)
@click.argument("name")
@click.option("-p", "--project-name", "project", default=None, help="Project name (default: the entry's name)")
@click.option("--set", "sets", multiple=True, help="A setting, KEY=VALUE (see `catalog show NAME`)")
@click.option("--source", default=None, help="The file the entry is built from, when it needs one")
@click.option("--sha256", default=None, help="The SHA-256 that file must have")
@click.pass_context
def deploy_cmd(ctx, name, project, sets, source, sha256):
    """Deploy an entry as a compose project and wait until its services are healthy."""
    from dockerbank.catalog.settings import parse_sets

    service = _service(ctx, runner=True)
    report = service.deploy(name, project, parse_sets(sets), source=source, sha256=sha256)
    for tag, image_id in report.build.built:
        echo(f"built {tag} {image_id[:19]}", err=True)
    for key in report.settings.generated:
        echo(f"generated secret {key}: {report.directory / 'secrets' / key}", err=True)
    echo(report.project)


@catalog.command("rm", context_settings=CONTEXT)
@click.argument("project")
@click.option("-v", "--volumes", is_flag=True, help="Remove the project's volumes (its data) too")
@click.option("--purge", is_flag=True, help="Remove the kept settings and secrets too")
@click.pass_context
def rm_cmd(ctx, project, volumes, purge):
    """Remove a deployment (its settings and secrets stay for a redeploy or a restore unless --purge)."""
    failures = _service(ctx, runner=True).rm(project, volumes=volumes, purge=purge)
    if failures:
        for line in failures[:-1]:
            echo(f"Error: {line}", err=True)
        raise DockerbankError(failures[-1])
    echo(project)


COMMANDS = {"catalog": catalog}
