"""``dockerbank audit image`` and ``dockerbank sbom``: thin over ``engine.audit``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from dockerbank.cli.common import echo, engine_of, print_table

CONTEXT = {"help_option_names": ["-h", "--help"]}
_LEVELS = click.Choice(["high", "medium", "low"])


@click.group("audit", context_settings=CONTEXT)
def audit() -> None:
    """Audit images (without running them) for security and license findings."""


@audit.command("image", context_settings=CONTEXT)
@click.argument("image")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Output: a table for people, JSON for tools")
@click.option("--fail-on", type=_LEVELS, default=None,
              help="Exit 1 if a finding is at least this severe (for CI gates)")
@click.option("--vuln-db", type=click.Path(path_type=Path), default=None,
              help="Directory of OSV JSON files to match installed packages against")
@click.option("--max-age", type=int, default=180, show_default=True, help="Days after which the image is old")
@click.option("--no-cache", is_flag=True, help="Scan the layers again instead of using the cached result")
@click.pass_context
def image_cmd(ctx, image, fmt, fail_on, vuln_db, max_age, no_cache) -> None:
    """Audit IMAGE from its layers and config."""
    from dockerbank.audit.findings import fails
    from dockerbank.audit.service import AuditOptions, AuditService

    report = AuditService.of(engine_of(ctx)).audit_image(
        image, AuditOptions(max_age_days=max_age, vuln_db=vuln_db, use_cache=not no_cache))
    if fmt == "json":
        echo(json.dumps(report.to_dict(), indent=2))
    else:
        _table(report)
    if fails(report.findings, fail_on):
        ctx.exit(1)


def _common(func):
    func = click.option("--fail-on", type=_LEVELS, default=None,
                        help="Exit 1 if a finding is at least this severe (for CI gates)")(func)
    return click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
                        show_default=True, help="Output: a table for people, JSON for tools")(func)


@audit.command("container", context_settings=CONTEXT)
@click.argument("container")
@_common
@click.pass_context
def container_cmd(ctx, container, fmt, fail_on) -> None:
    """Audit CONTAINER's configuration (CIS Docker Benchmark, section 5)."""
    from dockerbank.audit.service import AuditService

    _show(ctx, AuditService.of(engine_of(ctx)).audit_container(container), fmt, fail_on)


@audit.command("host", context_settings=CONTEXT)
@_common
@click.option("--backup-repo", default=None, help="Repository the volumes' backups go to (default: the root's own)")
@click.option("--backup-max-age", default="24h", show_default=True,
              help="A volume whose last backup is older than this is overdue")
@click.pass_context
def host_cmd(ctx, fmt, fail_on, backup_repo, backup_max_age) -> None:
    """Audit this host's Dockerbank set-up (API socket, listeners, registries, directory modes,
    user namespaces, overdue backups)."""
    from dockerbank.audit.service import AuditService
    from dockerbank.container.health import parse_go_duration

    max_age = parse_go_duration(backup_max_age, "--backup-max-age") / 1e9
    report = AuditService.of(engine_of(ctx)).audit_host(backup_repo, max_age)
    _show(ctx, report, fmt, fail_on)


def _show(ctx, report, fmt: str, fail_on: str | None) -> None:
    from dockerbank.audit.findings import fails

    if fmt == "json":
        echo(json.dumps(report.to_dict(), indent=2))
    else:
        shown = report.id[:12] if report.kind == "container" else report.id
        echo(f"{report.kind.capitalize()}: {report.name} ({shown})")
        for note in getattr(report, "notes", []):
            echo(f"Note: {note}")
        _rows(report.findings)
    if fails(report.findings, fail_on):
        ctx.exit(1)


def _rows(findings) -> None:
    if not findings:
        echo("No findings.")
        return
    rows = [[f.severity.upper(), f.rule, f.where, f.detail, f.fix] for f in findings]
    print_table(["SEVERITY", "RULE", "WHERE", "FINDING", "WHAT TO DO"], rows)


def _table(report) -> None:
    echo(f"Image: {report.name} ({report.image_id[7:19]}), {len(report.packages)} packages"
         + ("" if report.complete else " (INCOMPLETE: see the unreadable findings)"))
    _rows(report.findings)


@click.command("sbom", context_settings=CONTEXT)
@click.argument("image")
@click.option("--format", "fmt", type=click.Choice(["cyclonedx-json", "spdx-json"]), default="cyclonedx-json",
              show_default=True, help="SBOM format: CycloneDX 1.6 JSON or SPDX 2.3 JSON")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to a file instead of stdout")
@click.pass_context
def sbom_cmd(ctx, image, fmt, output) -> None:
    """Print the software bill of materials of IMAGE (packages from its dpkg, apk, Python and npm databases)."""
    from dockerbank.audit import sbom
    from dockerbank.audit.service import AuditService

    text = sbom.render(AuditService.of(engine_of(ctx)).audit_image(image), fmt)
    if output is None:
        echo(text)
        return
    tmp = output.with_name(f".{output.name}.tmp")
    tmp.write_text(text + "\n")
    tmp.replace(output)


COMMANDS = {"audit": audit, "sbom": sbom_cmd}
