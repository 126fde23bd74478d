"""``dockerbank commit``: a new image from a container's changes (paused while captured)."""

from __future__ import annotations

import click

from dockerbank.cli.common import engine_of


@click.command("commit", context_settings={"help_option_names": ["--help"]})
@click.option("-a", "--author", default="", help='Author (e.g., "Jane <jane@example.org>").')
@click.option("-c", "--change", "changes", multiple=True, help="Apply a Dockerfile instruction to the image.")
@click.option("-m", "--message", default="", help="Commit message.")
@click.option("-p", "--pause", type=click.BOOL, default=True, is_flag=False, flag_value=True, show_default=True,
              help="Freeze the container while its layer is captured (--pause=false to not).")
@click.argument("container")
@click.argument("reference", required=False)
@click.pass_context
def commit_cmd(ctx: click.Context, author: str, changes: tuple[str, ...], message: str, pause: bool,
               container: str, reference: str | None) -> None:
    """Create a new image from a container's changes."""
    from dockerbank.container.commit import CommitOptions

    record = engine_of(ctx).container_ops.commit(container, CommitOptions(reference, pause, changes, message, author))
    click.echo(record.id)


COMMANDS = {"commit": commit_cmd}
