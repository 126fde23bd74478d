"""``dockerbank version``, ``info`` and ``system info|df|check``."""

from __future__ import annotations

import json
import platform
import sys

import click

from dockerbank import __version__
from dockerbank.cli.common import engine_of, human_size, print_table, render_template


def _facts(engine):
    from dockerbank.host import system
    from dockerbank.runtime.detect import detect

    choice = detect(engine.config.run_root)
    return system.collect(engine.config.root, default_runtime=choice.name), choice


def _version_data() -> dict:
    return {
        "Client": {"Version": __version__, "Os": "linux", "Arch": platform.machine(),
                   "PythonVersion": platform.python_version()},
        "Server": {"Version": __version__, "Os": "linux", "Arch": platform.machine(),
                   "KernelVersion": platform.release(), "Daemonless": True},
    }


def _emit_formatted(data: dict, fmt: str | None, name: str = "", parse_exit: int = 1) -> bool:
    """Print ``data`` as JSON or through a template when ``--format`` asks; False when it does not
    (``name``, ``parse_exit``: see render_template)."""
    if not fmt:
        return False
    click.echo(json.dumps(data) if fmt == "json" else render_template(fmt, data, name=name, parse_exit=parse_exit))
    return True


@click.command("version")
@click.option("-f", "--format", "fmt", default=None, help="Format with a Go-like template or 'json'.")
def version_cmd(fmt: str | None) -> None:
    """Show the Dockerbank version."""
    from dockerbank.cli import gotypes

    data = _version_data()
    if _emit_formatted(gotypes.version_value(data), fmt, name="version", parse_exit=64):
        return
    client = data["Client"]
    click.echo(f"Dockerbank version {client['Version']}\n Python: {client['PythonVersion']}\n"
               f" OS/Arch: {client['Os']}/{client['Arch']}\n Daemonless: true")


@click.command("info")
@click.option("-f", "--format", "fmt", default=None, help="Format with a Go-like template or 'json'.")
@click.pass_context
def info_cmd(ctx: click.Context, fmt: str | None) -> None:
    """Show system-wide information: runtime, cgroups, storage, counts."""
    from dockerbank.cli import gotypes
    from dockerbank.host import system
    from dockerbank.settings import default_log_driver

    engine = engine_of(ctx)
    facts, choice = _facts(engine)
    containers = engine.containers.list()
    counts = {"running": 0, "paused": 0, "stopped": 0}
    for container in containers:
        status = container.state.status
        key = status if status in ("running", "paused") else "stopped"
        counts[key] += 1
    images = len(engine.images.list())
    from dockerbank.host.subids import mode_facts

    mode = mode_facts(engine.containers.default_userns(), engine.config.root)
    data = system.to_api(facts)
    data["SecurityOptions"] = ["name=seccomp,profile=builtin"] + (["name=userns"] if mode.default_userns != "host"
                                                                  else []) + (["name=rootless"] if mode.rootless else [])
    data["UsernsDefault"] = mode.default_userns
    data.update({
        "Containers": len(containers), "ContainersRunning": counts["running"],
        "ContainersPaused": counts["paused"], "ContainersStopped": counts["stopped"],
        "Images": images, "ServerVersion": __version__, "RuntimeReason": choice.reason,
        "LoggingDriver": default_log_driver(engine.config.root),
    })
    if _emit_formatted(gotypes.info_value(data), fmt, parse_exit=64):
        return
    click.echo("Server:")
    click.echo(f" Containers: {len(containers)}")
    click.echo(f"  Running: {counts['running']}\n  Paused: {counts['paused']}\n  Stopped: {counts['stopped']}")
    click.echo(f" Images: {images}")
    click.echo(f" Server Version: {__version__} (daemonless)")
    for line in system.render_info(facts):
        click.echo(line)
    click.echo(f" Logging Driver: {data['LoggingDriver']}")
    for line in mode.lines():
        click.echo(line)
    if choice.reason:
        click.echo(f" Runtime Choice: {choice.reason}")
    for warning in system.warnings(facts):
        click.echo(warning, err=True)


@click.command("df")
@click.option("-v", "--verbose", is_flag=True, help="Show detailed information on space usage.")
@click.option("--format", "fmt", default=None, help="Format with a Go-like template or 'json'.")
@click.pass_context
def df_cmd(ctx: click.Context, verbose: bool, fmt: str | None) -> None:
    """Show disk usage of images, containers and volumes."""
    from dockerbank.cli import gotypes
    from dockerbank.system.usage import disk_usage

    engine = engine_of(ctx)
    usage = disk_usage(engine)
    rows = [row.as_dict() for row in usage.summary()]
    if fmt and verbose and fmt != "json":
        # docker runs a verbose template once, on the whole usage (its diskUsageContext), no newline after
        click.echo(render_template(fmt, _verbose_usage(engine, usage)), nl=False)
        return
    if fmt:
        for row in rows:
            _emit_formatted(gotypes.row(row, gotypes.DISK_USAGE_ROWS[row["Type"]]), fmt)
        return
    print_table(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
                [[r["Type"], str(r["TotalCount"]), str(r["Active"]), r["Size"], r["Reclaimable"]] for r in rows])
    if verbose:
        click.echo("\nVolumes space usage:\n")
        print_table(["VOLUME NAME", "LINKS", "SIZE"],
                    [[v.name, str(v.links), human_size(v.size)] for v in usage.volumes])


def _verbose_usage(engine, usage):
    """docker's diskUsageContext: Images, Containers, Volumes and BuildCache lists. Dockerbank measures
    no per-image or per-container rows (nil: ``<no value>``); a volume row is ``volume ls``'s with its
    links and size."""
    from dockerbank.cli import gotypes
    from dockerbank.cli.volumes import ls_row
    from dockerbank.gotemplate import GoStruct, Shape

    known = {v.name: v for v in engine.volumes.list({})}
    volumes = [gotypes.row({**ls_row(known[v.name]), "Links": str(v.links), "Size": human_size(v.size)},
                           gotypes.VOLUME_ROW) for v in usage.volumes if v.name in known]
    return GoStruct({"Volumes": volumes, "BuildCache": []}, gotypes.DISK_USAGE,
                    shape=Shape(nil=("Images", "Containers")))


@click.command("check")
@click.option("--dry-run", is_flag=True, help="Only report what a crash left; repair nothing.")
@click.pass_context
def check_cmd(ctx: click.Context, dry_run: bool) -> None:
    """Find and repair what a crash or a killed CLI left: dead containers, stale mounts, cgroups, netns."""
    from dockerbank.system.check import check

    report = check(engine_of(ctx), repair=not dry_run)
    for line in report:
        click.echo(line)
    if not report:
        click.echo("No problems found.")
    elif dry_run:
        sys.exit(1)


@click.command("metrics")
@click.option("--backup-repo", metavar="URL", default=None,
              help="Backup repository whose snapshots are reported (default: <root>/backups)")
@click.option("--backup-password-file", metavar="FILE", default=None,
              help="Passphrase of an encrypted backup repository (else $DOCKERBANK_BACKUP_PASSWORD)")
@click.pass_context
def metrics_cmd(ctx: click.Context, backup_repo: str | None, backup_password_file: str | None) -> None:
    """Print the metrics once, in the Prometheus text format (cAdvisor's names per container)."""
    from dockerbank.api.metrics import make_collector
    from dockerbank.monitor.collector import render

    click.echo(render(make_collector(engine_of(ctx).config, backup_repo, backup_password_file)).decode(), nl=False)


@click.command("userns-default")
@click.argument("mode", required=False)
@click.pass_context
def userns_default_cmd(ctx: click.Context, mode: str | None) -> None:
    """Show or set the root's default --userns (host, or auto[:size=N]: each container its own IDs)."""
    containers = engine_of(ctx).containers
    click.echo(containers.set_default_userns(mode) if mode else (containers.default_userns() or "host"))


@click.group("system")
def system_group() -> None:
    """Manage Dockerbank."""


system_group.add_command(info_cmd, "info")
system_group.add_command(df_cmd, "df")
system_group.add_command(check_cmd, "check")
system_group.add_command(userns_default_cmd, "userns-default")
system_group.add_command(metrics_cmd, "metrics")

COMMANDS = {"system": system_group, "info": info_cmd, "version": version_cmd}

from dockerbank.cli.service import service_cmd  # noqa: E402  (its own module; imports aiohttp only when run)

system_group.add_command(service_cmd, "service")

from dockerbank.cli.events import events_cmd  # noqa: E402

system_group.add_command(events_cmd, "events")
