"""``save``: write images as a docker-archive (default) or an OCI archive.

The archive is deterministic: the same images with the same tags give the same bytes,
so save -> load -> save keeps every digest (image ID = config digest, diff IDs, and the
manifest digests of an OCI archive). Layer bodies are copied from the stored blobs by
``sendfile``; a layer kept only in compressed form is decompressed on the fly for a
docker-archive (whose layers are plain tars) and copied as is into an OCI archive.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from dockerbank.errors import InvalidArgument, NotFound
from dockerbank.image import archive_formats as fmt
from dockerbank.image import compression
from dockerbank.image.store import ImageStore
from dockerbank.image.tarwriter import TarWriter
from dockerbank.oci import digest as dg
from dockerbank.oci import reference as refs

FORMATS = ("docker-archive", "oci-archive")


@dataclass
class SaveItem:
    """One image to write and the references it is saved under (fully qualified repo:tag)."""

    image_id: str
    tags: list[str] = field(default_factory=list)


def plan(store: ImageStore, names: list[str]) -> list[SaveItem]:
    """Which images and tags ``save NAME...`` writes, the way docker chooses them.

    ``repo:tag`` saves that tag; a bare ``repo`` saves every tag of the repository; an ID or
    digest saves the image without names.
    """
    items: dict[str, SaveItem] = {}

    def add(image_id: str, tag: str | None) -> None:
        item = items.setdefault(image_id, SaveItem(image_id))
        if tag and tag not in item.tags:
            item.tags.append(tag)

    for name in names:
        ref = None
        if refs.looks_like_reference(name):
            ref = refs.parse(name, default_tag=False)
        if ref is not None and ref.tag is None and ref.digest is None:
            rows = store.db.query("SELECT ref, image_id FROM tags WHERE repository = ? ORDER BY ref", (ref.repository,))
            if rows:
                for row in rows:
                    add(row["image_id"], row["ref"])
                continue
        record = store.resolve(name)
        tag = None
        if ref is not None and ref.tag is not None and not ref.digest:
            if store.db.query_one("SELECT 1 FROM tags WHERE ref = ? AND image_id = ?", (ref.name_tag, record.id)):
                tag = ref.name_tag
        add(record.id, tag)
    return list(items.values())


def _uncompressed_blob(store: ImageStore, diff_id: str) -> str | None:
    row = store.db.query_one(
        "SELECT blob FROM layer_blobs WHERE diff_id = ? AND media_type = ? LIMIT 1", (diff_id, compression.MEDIA_TAR)
    )
    if row is not None and store.blobs.has(row["blob"]):
        return row["blob"]
    return None


def _any_blob(store: ImageStore, diff_id: str) -> tuple[str, str, int]:
    """(media type, digest, size) of a stored blob of the layer, the uncompressed one if there is one."""
    rows = store.db.query(
        "SELECT blob, media_type, size FROM layer_blobs WHERE diff_id = ? ORDER BY media_type = ? DESC, blob",
        (diff_id, compression.MEDIA_TAR),
    )
    for row in rows:
        if store.blobs.has(row["blob"]):
            return row["media_type"], row["blob"], store.blobs.size(row["blob"])
    raise NotFound(f"no stored blob holds layer {diff_id}")


def _tar_size(store: ImageStore, diff_id: str) -> int:
    row = store.db.query_one("SELECT tar_size FROM layers WHERE diff_id = ? LIMIT 1", (diff_id,))
    if row is None:
        raise NotFound(f"layer {diff_id} not found")
    return row["tar_size"]


def write_docker_archive(store: ImageStore, items: list[SaveItem], fd: int) -> None:
    """docker save's layout: ``<chain hex>/{VERSION,json,layer.tar}``, ``<config hex>.json``, manifest.json, repositories."""
    tar = TarWriter(fd)
    configs_written: set[str] = set()
    entries = []
    tops: dict[str, str] = {}
    for item in items:
        diff_ids = store.diff_ids(item.image_id)
        layer_paths = []
        parent_dir = None
        for chain, diff_id in zip(dg.chain_ids(diff_ids), diff_ids):
            layer_dir = dg.hex_of(chain)
            path = f"{layer_dir}/layer.tar"
            if f"{layer_dir}/" not in tar.dirs:
                tar.add_dir(layer_dir)
                tar.add_bytes(f"{layer_dir}/VERSION", b"1.0")
                tar.add_bytes(f"{layer_dir}/json", fmt.legacy_layer_json(layer_dir, parent_dir))
                blob = _uncompressed_blob(store, diff_id)
                if blob is not None:
                    tar.add_file(path, str(store.blobs.path(blob)), store.blobs.size(blob))
                else:
                    with store.layer_tar(diff_id) as stream:
                        tar.add_stream(path, stream, _tar_size(store, diff_id))
            layer_paths.append(path)
            parent_dir = layer_dir
        config_name = dg.hex_of(item.image_id) + ".json"
        if config_name not in configs_written:
            configs_written.add(config_name)
            tar.add_bytes(config_name, store.blobs.read(item.image_id))
        familiar = [refs.parse(tag).familiar() for tag in item.tags]
        entries.append((config_name, familiar, layer_paths))
        for name in familiar:
            if parent_dir:
                tops[name] = parent_dir
    tar.add_bytes("manifest.json", fmt.docker_manifest(entries))
    if tops:
        tar.add_bytes("repositories", fmt.docker_repositories(tops))
    tar.close()


def write_oci_archive(store: ImageStore, items: list[SaveItem], fd: int) -> None:
    """An OCI image layout in a tar: ``oci-layout``, ``blobs/sha256/*``, ``index.json`` (one entry per tag)."""
    tar = TarWriter(fd)
    tar.add_bytes("oci-layout", fmt.OCI_LAYOUT.encode())
    tar.add_dir("blobs")
    tar.add_dir("blobs/sha256")
    written: set[str] = set()
    index_entries: list[tuple[str, int, str | None]] = []

    def put_bytes(data: bytes) -> tuple[str, int]:
        digest = dg.of_bytes(data)
        if digest not in written:
            written.add(digest)
            tar.add_bytes(fmt.blob_path(digest), data)
        return digest, len(data)

    for item in items:
        layers = []
        for diff_id in store.diff_ids(item.image_id):
            media, digest, size = _any_blob(store, diff_id)
            if digest not in written:
                written.add(digest)
                tar.add_file(fmt.blob_path(digest), str(store.blobs.path(digest)), size)
            layers.append((media, digest, size))
        config_digest, config_size = put_bytes(store.blobs.read(item.image_id))
        manifest_digest, manifest_size = put_bytes(fmt.oci_manifest(config_digest, config_size, layers))
        tags: list[str | None] = [*item.tags] or [None]
        for tag in tags:
            index_entries.append((manifest_digest, manifest_size, tag))
    tar.add_bytes("index.json", fmt.oci_index(index_entries))
    tar.close()


def save(store: ImageStore, names: list[str], output: str | None, out_fd: int | None = None,
         archive_format: str = "docker-archive") -> None:
    """Save images to the file ``output`` (written to a temporary name, renamed when complete) or to ``out_fd``."""
    if archive_format not in FORMATS:
        raise InvalidArgument(f"unsupported format {archive_format!r}: use one of {', '.join(FORMATS)}")
    if not names:
        raise InvalidArgument("save needs at least one image")
    items = plan(store, names)
    writer = write_docker_archive if archive_format == "docker-archive" else write_oci_archive
    if output is None:
        if out_fd is None:
            raise InvalidArgument("save needs an output file or descriptor")
        writer(store, items, out_fd)
        return
    target = Path(output)
    if target.is_dir():
        raise InvalidArgument(f"failed to save image: {output} is a directory")
    if target.exists() and not target.is_file():
        # a device, FIFO or /dev/stdout: write into it; renaming over it would replace the node
        fd = os.open(target, os.O_WRONLY | os.O_CLOEXEC)
        try:
            writer(store, items, fd)
        finally:
            os.close(fd)
        return
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent if str(target.parent) else ".")
    except OSError as exc:
        raise InvalidArgument(f"failed to save image: invalid output path: {exc.strerror}: {output}") from exc
    try:
        writer(store, items, fd)
        os.fchmod(fd, 0o644 & ~_umask())
        os.close(fd)
        fd = -1
        os.rename(tmp, target)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    """The process's umask, read without setting it (setting 0 and back with os.umask would change it for
    every thread in between: the API service saves images from worker threads)."""
    from dockerbank.host.fs import current_umask

    return current_umask()
