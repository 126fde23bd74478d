"""Image commands: images, image (ls, inspect, rm, prune, history, tag, save, load, import),
load, save, import, tag, rmi, history — with docker's flags, output and exit codes."""

from __future__ import annotations

import functools
import json
import os
import sys
from datetime import UTC, datetime

import click

from dockerbank.cli.common import engine_of, parse_filters, print_formatted, render_template
from dockerbank.errors import DockerbankError, InvalidArgument, UsageError

CONTEXT = {"help_option_names": ["-h", "--help"]}

IMAGE_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST",
                 "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "VirtualSize": "VIRTUAL SIZE",
                 "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "Containers": "CONTAINERS"}
HISTORY_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
                   "Size": "SIZE", "Comment": "COMMENT"}


def _emit(views: list[dict], fmt: str | None, default: str, headers: dict[str, str], go_type: str) -> None:
    """Print rows docker's way: ``json``, ``table TEMPLATE`` (aligned, with headers) or a raw template
    (on docker's row struct ``go_type``)."""
    template = default if not fmt or fmt == "table" else fmt
    print_formatted(views, template, lambda _rows: None, headers, go_type=go_type)


def _os_errors(func):
    """A failing disk or a bad path is a one-line error like any other, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise DockerbankError(f"{func.__name__.removesuffix('_cmd')}: {exc.strerror or exc}{where}") from exc

    return wrapper


def _human_flag(value: str) -> bool:
    text = value.lstrip("=").lower()
    if text in ("true", "1", "t", "yes"):
        return True
    if text in ("false", "0", "f", "no"):
        return False
    raise InvalidArgument(f'invalid argument "{value}" for "-H, --human" flag: strconv.ParseBool: parsing "{value}": invalid syntax')


# --- images / image ls ---------------------------------------------------------------------


@click.command("images", context_settings=CONTEXT)
@click.argument("repository", required=False)
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all images (default hides intermediate images)")
@click.option("--digests", is_flag=True, help="Show digests")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output based on conditions provided")
@click.option("--format", "fmt", default=None, help="Format output using a custom template or 'json'")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")
@click.pass_context
def images_cmd(ctx, repository, show_all, digests, filters, fmt, no_trunc, quiet):
    """List images"""
    from dockerbank.cli import gotypes
    from dockerbank.image import inspect as ins

    store = engine_of(ctx).images
    parsed = parse_filters(filters, ins.IMAGE_FILTERS)
    if repository:
        parsed.setdefault("reference", []).append(repository)
    records = store.list()
    if not show_all:
        hidden = store.intermediate_ids()
        records = [r for r in records if r.id not in hidden]
    records = ins.filter_images(store, records, parsed)
    records.sort(key=lambda r: ins.parse_time(r.created), reverse=True)
    now = datetime.now(UTC)
    views = [ins.image_view(rec, repo, tag, digest, now=now, trunc=not no_trunc)
             for rec, repo, tag, digest in ins.image_rows(records, digests=digests)]
    if quiet:
        for view in views:
            click.echo(view["ID"])
        return
    default = "table {{.Repository}}\t{{.Tag}}\t" + ("{{.Digest}}\t" if digests else "") + \
        "{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    _emit(views, fmt, default, IMAGE_HEADERS, gotypes.IMAGE_ROW)


# --- inspect -----------------------------------------------------------------------------


@click.command("inspect", context_settings=CONTEXT)
@click.argument("images", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", default=None, help="Format output using a custom template or 'json'")
@click.pass_context
def image_inspect(ctx, images, fmt):
    """Display detailed information on one or more images"""
    from dockerbank.cli import gotypes
    from dockerbank.image.inspect import go_json, inspect_image

    store = engine_of(ctx).images
    found, errors = [], []
    for name in images:
        try:
            found.append(inspect_image(store, name))
        except DockerbankError as exc:
            errors.append(exc)
    if fmt and fmt != "json":
        for item in found:
            click.echo(render_template(fmt, gotypes.image_document(item), parse_exit=64))
    elif fmt == "json":
        for item in found:
            click.echo(go_json(item))
    else:
        text = json.dumps(found, indent=4, ensure_ascii=False)
        click.echo(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
    _finish(errors)


def _finish(errors: list[DockerbankError]) -> None:
    """Docker reports every failed item, then exits 1 once all items were tried."""
    if not errors:
        return
    for exc in errors[:-1]:
        click.echo(f"Error: {exc.message}", err=True)
    raise errors[-1]


# --- history -------------------------------------------------------------------------------


@click.command("history", context_settings=CONTEXT)
@click.argument("image", required=False)
@click.option("--format", "fmt", default=None, help="Format output using a custom template or 'json'")
@click.option("-H", "--human", default="true", show_default=True,
              help="Print sizes and dates in human readable format")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")
@click.pass_context
def history_cmd(ctx, image, fmt, human, no_trunc, quiet):
    """Show the history of an image"""
    from dockerbank.cli import gotypes
    from dockerbank.image import inspect as ins

    store = engine_of(ctx).images
    if image is None and human.lstrip("=").lower() not in ("true", "false", "1", "0", "t", "f", "yes", "no"):
        image, human = human, "true"  # docker's bare `-H IMAGE`: -H is a boolean flag that takes no value
    if image is None:
        raise DockerbankError('"dockerbank history" requires exactly 1 argument.')
    human_flag = _human_flag(human)
    record = store.resolve(image)
    now = datetime.now(UTC)
    views = [ins.history_view(row, now=now, human=human_flag, trunc=not no_trunc)
             for row in ins.history_rows(store, record)]
    if quiet:
        for view in views:
            click.echo(view["ID"])
        return
    _emit(views, fmt, "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}", HISTORY_HEADERS,
          gotypes.HISTORY_ROW)


# --- tag -----------------------------------------------------------------------------------


@click.command("tag", context_settings=CONTEXT)
@click.argument("source")
@click.argument("target")
@click.pass_context
def tag_cmd(ctx, source, target):
    """Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"""
    from dockerbank.image.tagging import tag_image

    tag_image(engine_of(ctx).images, source, target)


# --- rmi / image rm --------------------------------------------------------------------------


@click.command("rmi", context_settings=CONTEXT)
@click.argument("images", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Force removal of the image")
@click.option("--no-prune", is_flag=True, help="Do not delete untagged parents")
@click.pass_context
def rmi_cmd(ctx, images, force, no_prune):
    """Remove one or more images"""
    from dockerbank.image.remove import remove_image

    store = engine_of(ctx).images
    errors = []
    for name in images:
        try:
            report = remove_image(store, name, force=force)
        except DockerbankError as exc:
            errors.append(exc)
            continue
        for kind, value in report.items:
            click.echo(f"{kind}: {value}")
    _finish(errors)


# --- image prune ---------------------------------------------------------------------------


@click.command("prune", context_settings=CONTEXT)
@click.option("-a", "--all", "all_images", is_flag=True, help="Remove all unused images, not just dangling ones")
@click.option("--filter", "filters", multiple=True, help="Provide filter values (e.g. 'until=<timestamp>')")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.pass_context
def prune_cmd(ctx, all_images, filters, force):
    """Remove unused images"""
    from dockerbank.units import human_size
    from dockerbank.image.remove import prune_images

    parsed = parse_filters(filters, {"until", "label", "label!"})
    if not force:
        warning = ("WARNING! This will remove all images without at least one container associated to them."
                   if all_images else "WARNING! This will remove all dangling images.")
        click.echo(warning)
        if not _confirm():
            return
    labels = parsed.get("label", []) + ["!" + spec for spec in parsed.get("label!", [])]
    until = parsed.get("until", [None])[-1]
    report = prune_images(engine_of(ctx).images, all_images, until, labels)
    if report.items:
        click.echo("Deleted Images:")
        for kind, value in report.items:
            click.echo(f"{kind.lower()}: {value}")
        click.echo("")
    click.echo(f"Total reclaimed space: {human_size(report.reclaimed)}")


def _confirm() -> bool:
    click.echo("Are you sure you want to continue? [y/N] ", nl=False)
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


# --- save / load / import --------------------------------------------------------------------


@click.command("save", context_settings=CONTEXT)
@click.argument("images", nargs=-1, required=True)
@click.option("-o", "--output", default=None, help="Write to a file, instead of STDOUT")
@click.option("--format", "archive_format", default="docker-archive", show_default=True,
              type=click.Choice(["docker-archive", "oci-archive"]),
              help="Archive format (a Dockerbank and podman extension)")
@click.pass_context
@_os_errors
def save_cmd(ctx, images, output, archive_format):
    """Save one or more images to a tar archive (streamed to STDOUT by default)"""
    from dockerbank.image.save import save

    store = engine_of(ctx).images
    if output is None:
        if sys.stdout.isatty():
            raise DockerbankError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
        sys.stdout.flush()
        save(store, list(images), None, sys.stdout.fileno(), archive_format)
    else:
        save(store, list(images), output, None, archive_format)


@click.command("load", context_settings=CONTEXT)
@click.option("-i", "--input", "input_path", default=None, help="Read from tar archive file, instead of STDIN")
@click.option("-q", "--quiet", is_flag=True, help="Suppress the load output")
@click.pass_context
@_os_errors
def load_cmd(ctx, input_path, quiet):
    """Load an image from a tar archive or STDIN (docker-archive or OCI archive)"""
    from dockerbank.image.load import load_file, load_stream

    store = engine_of(ctx).images
    if input_path is None:
        if sys.stdin.isatty():
            raise DockerbankError("requested load from stdin, but stdin is empty")
        loaded = load_stream(store, sys.stdin.buffer)
    else:
        if not os.path.exists(input_path):
            raise DockerbankError(f"open {input_path}: no such file or directory")
        loaded = load_file(store, input_path)
    for image in loaded:
        for name, old in image.renamed:
            click.echo(f"The image {name} already exists, renaming the old one with ID {old} to empty string")
        if image.tags:
            for name in image.tags:
                click.echo(f"Loaded image: {name}")
        else:
            click.echo(f"Loaded image ID: {image.id}")


@click.command("import", context_settings=CONTEXT)
@click.argument("source")
@click.argument("reference", required=False)
@click.option("-c", "--change", "changes", multiple=True, help="Apply Dockerfile instruction to the created image")
@click.option("-m", "--message", default="", help="Set commit message for imported image")
@click.option("--platform", default=None, help="Set platform if server is multi-platform capable")
@click.pass_context
@_os_errors
def import_cmd(ctx, source, reference, changes, message, platform):
    """Import the contents from a tarball to create a filesystem image"""
    from dockerbank.image.importer import import_rootfs, refuse_url
    from dockerbank.oci import imageconfig
    from dockerbank.oci import reference as refs

    store = engine_of(ctx).images
    refuse_url(source)
    if platform and platform.split("/")[0] != "linux":
        raise InvalidArgument(f"unsupported platform {platform!r}: only linux images are made here")
    if reference:
        refs.parse(reference)  # refuse a bad name before reading the tarball
    for change in changes:
        imageconfig.apply_change({}, change)
    with store.lock():
        if source == "-":
            if sys.stdin.isatty():
                raise UsageError("requested import from stdin, but stdin is a terminal")
            record = import_rootfs(store, sys.stdin.buffer, reference, tuple(changes), message)
        else:
            try:
                handle = open(source, "rb")
            except OSError as exc:
                raise DockerbankError(f"open {source}: {(exc.strerror or str(exc)).lower()}") from exc
            with handle:
                record = import_rootfs(store, handle, reference, tuple(changes), message)
    click.echo(record.id)


# --- groups ----------------------------------------------------------------------------------


@click.group("image", context_settings=CONTEXT)
def image_group():
    """Manage images"""


def _alias(command: click.Command, name: str) -> click.Command:
    copy = click.Command(name, params=command.params, callback=command.callback, help=command.help,
                         context_settings=command.context_settings)
    return copy


image_group.add_command(_alias(images_cmd, "ls"))
image_group.add_command(_alias(images_cmd, "list"))
image_group.add_command(image_inspect)
image_group.add_command(_alias(rmi_cmd, "rm"))
image_group.add_command(_alias(rmi_cmd, "remove"))
image_group.add_command(prune_cmd)
image_group.add_command(history_cmd)
image_group.add_command(tag_cmd)
image_group.add_command(save_cmd)
image_group.add_command(load_cmd)
image_group.add_command(import_cmd)

COMMANDS = {
    "images": images_cmd,
    "image": image_group,
    "load": load_cmd,
    "save": save_cmd,
    "import": import_cmd,
    "tag": tag_cmd,
    "rmi": rmi_cmd,
    "history": history_cmd,
}
