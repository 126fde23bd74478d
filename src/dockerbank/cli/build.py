"""``build``: Dockerfile builds with docker's flags and legacy-builder output."""

from __future__ import annotations

import sys

import click

from dockerbank.cli.common import engine_of
from dockerbank.errors import InvalidArgument, UsageError

CONTEXT = {"help_option_names": ["-h", "--help"]}


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        key, _, val = value.partition("=")
        if not key:
            raise InvalidArgument(f"invalid {what} {value!r}: expected KEY=VALUE")
        out[key] = val
    return out


@click.command("build", context_settings=CONTEXT)
@click.option("-t", "--tag", "tags", multiple=True, help="Name and optionally a tag in the 'name:tag' format")
@click.option("-f", "--file", "dockerfile", default=None, help="Name of the Dockerfile (Default is 'PATH/Dockerfile')")
@click.option("--build-arg", "build_args", multiple=True, help="Set build-time variables")
@click.option("--target", default=None, help="Set the target build stage to build.")
@click.option("--no-cache", is_flag=True, help="Do not use cache when building the image")
@click.option("--label", "labels", multiple=True, help="Set metadata for an image")
@click.option("-q", "--quiet", is_flag=True, help="Suppress the build output and print image ID on success")
@click.option("--iidfile", default=None, help="Write the image ID to the file")
@click.option("--lint", type=click.Choice(["off", "warn", "error"]), default="warn", show_default=True,
              help="Lint the Dockerfile with hadolint: print findings, fail on warnings/errors, or skip")
@click.option("--rm/--no-rm", default=True, hidden=True)
@click.option("--force-rm", is_flag=True, hidden=True)
@click.argument("path", required=True)
@click.pass_context
def build_cmd(ctx, tags, dockerfile, build_args, target, no_cache, labels, quiet, iidfile, lint, rm, force_rm,
              path):
    """Build an image from a Dockerfile"""
    from dockerbank.build import context as contexts
    from dockerbank.build.executor import BuildOptions
    from dockerbank.build.expand import parse_build_args
    from dockerbank.engine.containers import check_tags
    from dockerbank.engine.sinks import FdSink

    engine = engine_of(ctx)
    check_tags(tags)
    from dockerbank.audit.buildcheck import license_scan

    options = BuildOptions(list(tags), parse_build_args(build_args), target, no_cache, _pairs(labels, "label"), lint,
                           license_scan=license_scan(engine))
    stdin = sys.stdin.buffer
    dockerfile_text = None
    if dockerfile == "-":
        if path == "-":
            raise UsageError("invalid argument: can't use stdin for both build context and dockerfile")
        dockerfile_text = stdin.read().decode("utf-8", errors="replace")
        dockerfile = None
    if path == "-":
        context = contexts.from_stdin(stdin, engine.config.tmp_dir, dockerfile)
    elif path.startswith(("http://", "https://", "git://", "git@")):
        from dockerbank.errors import Offline

        raise Offline(f"unable to prepare context: remote contexts ({path}) are not supported offline")
    else:
        context = contexts.from_directory(path, dockerfile, dockerfile_text)

    image_id = engine.container_ops.build(context, options, FdSink(1), quiet=quiet, err=FdSink(2))
    if quiet:
        click.echo(image_id)
    if iidfile:
        with open(iidfile, "w") as handle:
            handle.write(image_id)


COMMANDS = {"build": build_cmd}
