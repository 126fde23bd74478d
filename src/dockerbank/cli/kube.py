"""``dockerbank kube generate|play|down``: parse, call kube's runner (compose's Stack over the
engine) and render. No operation's logic lives here."""

from __future__ import annotations

import os

import click

from dockerbank.cli.common import echo, engine_of

CONTEXT = {"help_option_names": ["-h", "--help"]}


@click.group("kube", context_settings=CONTEXT)
def kube() -> None:
    """Kubernetes manifests of stacks and containers, and manifests run locally."""


@kube.command("generate", context_settings=CONTEXT)
@click.argument("names", nargs=-1)
@click.option("--stack", default=None, metavar="PROJECT",
              help="A compose stack (its name, or the path of its compose file) instead of containers")
@click.option("--registry", default=None, help="Rewrite image references to this registry")
@click.option("-f", "--filename", default=None, help="Write the manifests to this file (default: stdout)")
@click.option("-t", "--type", "kind", type=click.Choice(["pod", "deployment"]), default="deployment",
              show_default=True, help="Workload of a service (a database with a volume becomes a StatefulSet)")
@click.option("--storage", default="1Gi", show_default=True, help="Storage request of each PersistentVolumeClaim")
@click.pass_context
def generate_cmd(ctx, names, stack, registry, filename, kind, storage):
    """Generate Kubernetes YAML from containers or a compose stack."""
    from dockerbank.errors import UsageError
    from dockerbank.kube import generate as gen
    from dockerbank.kube import runner

    engine = engine_of(ctx)
    if bool(names) == bool(stack):
        raise UsageError("kube generate needs containers or --stack PROJECT (not both)")
    if stack:
        project = runner.project_of_stack(engine, stack, dict(os.environ))
    else:
        project = runner.project_of_names(engine, list(names))
    result = runner.generate(engine, project, gen.GenerateOptions(kind=kind, registry=registry, storage=storage))
    for line in result.warnings:
        echo(f"WARN: {line}", err=True)
    text = gen.to_yaml(result.manifests)
    if filename:
        tmp = f"{filename}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, filename)
    else:
        echo(text, nl=False)


@kube.command("play", context_settings=CONTEXT)
@click.argument("file")
@click.option("--ignore-unsupported", is_flag=True, help="Run what is supported, warn about the rest")
@click.pass_context
def play_cmd(ctx, file, ignore_unsupported):
    """Create containers, volumes and networks from Kubernetes YAML."""
    from dockerbank.kube import runner
    from dockerbank.kube.play import KubeFileError

    try:
        plan = runner.play(engine_of(ctx), file, ignore_unsupported=ignore_unsupported, out=echo)
    except KubeFileError as exc:
        for line in exc.problems:
            echo(line, err=True)
        raise
    echo(f"Stack: {plan.project.name}")
    for service in plan.project.services:
        echo(f"Service: {service}")


@kube.command("down", context_settings=CONTEXT)
@click.argument("file")
@click.option("--force", is_flag=True, help="Also remove the volumes of the PersistentVolumeClaims (their data)")
@click.pass_context
def down_cmd(ctx, file, force):
    """Remove what kube play created from this Kubernetes YAML."""
    from dockerbank.errors import DockerbankError
    from dockerbank.kube import runner

    failures = runner.down(engine_of(ctx), file, volumes=force, out=echo)
    if failures:
        for line in failures[:-1]:
            echo(f"Error: {line}", err=True)
        raise DockerbankError(failures[-1])


COMMANDS = {"kube": kube}
