"""``dockerbank base-image busybox|debian``: make a base image on this host, no registry needed."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from dockerbank.cli.common import engine_of


@click.command("base-image")
@click.argument("kind", type=click.Choice(["busybox", "debian"]))
@click.option("-t", "--tag", default=None, help="Reference to tag the image with (default: KIND:latest).")
@click.option("--cache", default="/var/cache/dockerbank", show_default=True,
              help="Directory keeping the Debian rootfs tarball between runs.")
@click.pass_context
def base_image(ctx: click.Context, kind: str, tag: str | None, cache: str) -> None:
    """Build a base image locally (busybox-static, or Debian bookworm minbase via debootstrap)."""
    from dockerbank.image import baseimage
    from dockerbank.image.importer import import_rootfs

    engine = engine_of(ctx)
    tag = tag or f"{kind}:latest"
    changes = ('CMD ["sh"]',) if kind == "busybox" else ('CMD ["bash"]',)
    if kind == "busybox":
        with tempfile.TemporaryDirectory() as work:
            tar_path = baseimage.busybox_rootfs_tar(Path(work) / "rootfs.tar")
            with open(tar_path, "rb") as handle:
                record = import_rootfs(engine.images, handle, tag, changes, "busybox-static rootfs",
                                       created=_rfc3339_of_mtime(baseimage.BUSYBOX))
    else:
        cache_dir = Path(cache)
        cache_dir.mkdir(parents=True, exist_ok=True)
        tar_path = cache_dir / "debian-bookworm-minbase.tar"
        if not tar_path.exists():
            baseimage.debian_rootfs_tar(tar_path)
        with open(tar_path, "rb") as handle:
            record = import_rootfs(engine.images, handle, tag, changes, "debootstrap bookworm minbase",
                                   created=_rfc3339_of_mtime(str(tar_path)))
    click.echo(record.id)


def _rfc3339_of_mtime(path: str) -> str:
    """The image's creation time is its input's mtime, so the same input gives the same image ID."""
    import os
    from datetime import datetime, timezone

    return datetime.fromtimestamp(int(os.stat(path).st_mtime), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


COMMANDS = {"base-image": base_image}
