"""``load``: bring the images of a docker-archive or OCI archive into the store.

Order of writes, so that a broken archive leaves no image behind: each layer is unpacked
straight from the archive (``layers.add`` checks the diff ID) while a second thread copies
its bytes into a temporary blob file; the blob is renamed into the store once verified;
the image config is recorded last, then the tags. The archive is read member by member
from disk (stdin is spooled to the store's tmp dir first), never held in memory.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tempfile
import threading
from dataclasses import dataclass, field

from dockerbank.errors import CorruptData
from dockerbank.image import compression
from dockerbank.image.archive_formats import ArchiveImage, parse_docker_manifest, parse_oci_index
from dockerbank.image.store import ImageStore
from dockerbank.image.tarindex import Member, TarIndex
from dockerbank.oci import digest as dg
from dockerbank.oci import reference as refs

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import BinaryIO

    from dockerbank.streams import Reader

COPY_CHUNK = 8 << 20
_OUTER_MAGIC = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz"}


@dataclass
class LoadedImage:
    """One image a load recorded, with the names it got and the names it took from other images."""

    id: str
    tags: list[str] = field(default_factory=list)           # familiar names, as docker prints them
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (familiar name, old image ID)


def load_file(store: ImageStore, path: str | os.PathLike) -> list[LoadedImage]:
    """Load every image of the archive at ``path`` (plain tar, or gzip/zstd/bzip2/xz-compressed)."""
    loaded = _load_file(store, path)
    for image in loaded:
        store.event("load", image.id, (image.tags or [image.id])[0])
    return loaded


def _load_file(store: ImageStore, path: str | os.PathLike) -> list[LoadedImage]:
    if not stat.S_ISREG(os.stat(path).st_mode):  # -i /dev/stdin, a FIFO: read once, as a stream
        with open(path, "rb") as handle:
            return load_stream(store, handle)
    with open(path, "rb") as handle:
        head = handle.read(8)
        kind = _outer_compression(head)
        if kind is None:
            return _load_tar(store, os.fspath(path))
        handle.seek(0)
        return load_stream(store, handle)


def load_stream(store: ImageStore, stream: BinaryIO) -> list[LoadedImage]:
    """Load from a non-seekable stream (stdin): spool it (decompressed) into the store's tmp dir first."""
    store.config.tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, spool = tempfile.mkstemp(prefix="load-", suffix=".tar", dir=store.config.tmp_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            _spool(stream, out)
        if os.path.getsize(spool) == 0:
            raise CorruptData("requested load from stdin, but stdin is empty")
        return _load_tar(store, spool)
    finally:
        os.unlink(spool)


def _outer_compression(head: bytes) -> str | None:
    for magic, kind in _OUTER_MAGIC.items():
        if head.startswith(magic):
            return kind
    return None


def _spool(stream: BinaryIO, out: BinaryIO) -> None:
    raw = stream.buffer if hasattr(stream, "buffer") else stream
    buffered = raw if hasattr(raw, "peek") else io.BufferedReader(compression._Raw(raw), 1 << 20)
    kind = _outer_compression(buffered.peek(8)[:8])
    if kind == "gzip":
        import gzip

        reader: Reader = gzip.GzipFile(fileobj=buffered, mode="rb")
    elif kind == "zstd":
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)
    elif kind == "bzip2":
        import bz2

        reader = bz2.BZ2File(buffered)
    elif kind == "xz":
        import lzma

        reader = lzma.LZMAFile(buffered)
    else:
        reader = buffered
    compression.read_all_checked(reader, out.write, COPY_CHUNK)


def _load_tar(store: ImageStore, path: str) -> list[LoadedImage]:
    index = TarIndex(path)
    if index.has("manifest.json"):
        images = parse_docker_manifest(index.read("manifest.json"))
    elif index.has("index.json"):
        images = parse_oci_index(index.read)
    else:
        raise CorruptData("invalid archive: neither manifest.json (docker-archive) nor index.json (OCI layout) found")
    if not images:
        raise CorruptData("invalid archive: it holds no image")
    results = []
    with store.lock():
        for image in images:
            results.append(_load_image(store, index, image))
    return results


def _load_image(store: ImageStore, index: TarIndex, image: ArchiveImage) -> LoadedImage:
    config_bytes = index.read(image.config_path)
    image_id = dg.of_bytes(config_bytes)
    if image.config_digest and image.config_digest != image_id:
        raise CorruptData(f"invalid archive: config {image.config_path} does not match digest {image.config_digest}")
    config = _parse_config(config_bytes, image.config_path)
    diff_ids = config["rootfs"]["diff_ids"]
    if len(diff_ids) != len(image.layers):
        raise CorruptData(
            f"invalid archive: image {dg.short_id(image_id)} lists {len(image.layers)} layers "
            f"but its config has {len(diff_ids)} diff IDs"
        )
    parent = None
    for layer, diff_id in zip(image.layers, diff_ids):
        parent = _load_layer(store, index, layer.path, parent, diff_id, layer.blob_digest)
    record = store.record_image(config_bytes)  # last: only a complete image becomes visible
    loaded = LoadedImage(record.id)
    for name in image.tags:
        ref = refs.parse(name)
        old = store.db.query_one("SELECT image_id FROM tags WHERE ref = ?", (ref.name_tag,))
        if old is not None and old["image_id"] != record.id:
            loaded.renamed.append((ref.familiar(), old["image_id"]))
        store.tag(record.id, name)
        loaded.tags.append(ref.familiar())
    return loaded


def _parse_config(data: bytes, where: str) -> dict:
    try:
        config = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptData(f"invalid archive: image config {where} is not valid JSON") from exc
    rootfs = config.get("rootfs") if isinstance(config, dict) else None
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) and dg.is_digest(d) for d in diff_ids):
        raise CorruptData(f"invalid archive: image config {where} has no valid rootfs.diff_ids")
    return config


def _has_blob_for(store: ImageStore, diff_id: str) -> bool:
    rows = store.db.query("SELECT blob FROM layer_blobs WHERE diff_id = ?", (diff_id,))
    return any(store.blobs.has(row["blob"]) for row in rows)


def _load_layer(store: ImageStore, index: TarIndex, path: str, parent: str | None, diff_id: str,
                expected_blob: str | None) -> str:
    """Store one layer (blob + unpacked tree) unless the store has both; return its chain ID.

    The blob copy (copy_file_range, in the kernel, without the GIL) runs in a second thread
    while this one unpacks the same member straight from the archive: the two passes over
    the layer overlap instead of adding up.
    """
    chain = diff_id if parent is None else dg.of_bytes(f"{parent} {diff_id}".encode())
    had_layer = store.layers.has(chain)
    if had_layer and _has_blob_for(store, diff_id):
        return chain
    member = index.member(path)
    with index.open(path) as probe:
        kind = compression.detect(probe.read(4))
    # an uncompressed layer's blob digest is its diff ID, which layers.add verifies while
    # unpacking: hashing the blob separately would read it twice for nothing
    trust_diff = kind == "none" and (expected_blob is None or expected_blob == diff_id) and not had_layer
    store.blobs.dir.mkdir(parents=True, exist_ok=True)
    store.config.tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="layer-", dir=store.config.tmp_dir)
    os.close(fd)
    copier = _BlobCopier(index.path, member, tmp, hash_it=not trust_diff)
    copier.start()
    try:
        if not had_layer:
            with io.BufferedReader(index.open(path), COPY_CHUNK) as stream:
                try:
                    store.layers.add(parent, stream, expected_diff_id=diff_id)
                except CorruptData as exc:  # HostileArchive stays HostileArchive
                    raise type(exc)(f"invalid archive: layer {path}: {exc.message}") from exc
        copier.join()
        if copier.error is not None:
            raise copier.error
        blob_digest = diff_id if trust_diff else copier.digest
        assert blob_digest is not None, "the copier hashes any blob not trusted by its diff ID"
        if expected_blob and blob_digest != expected_blob:
            raise CorruptData(f"invalid archive: layer {path} does not match its digest {expected_blob}")
        if had_layer:
            # layers.add would have reused the existing tree without reading: verify the blob here
            actual = _uncompressed_digest(tmp)
            if actual != diff_id:
                raise CorruptData(f"invalid archive: layer {path} has diff ID {actual}, expected {diff_id}")
        os.rename(tmp, store.blobs.path(blob_digest))
        store.add_layer_blob(diff_id, blob_digest, compression.media_type_for(kind), member.size)
    finally:
        copier.join()
        if os.path.exists(tmp):
            os.unlink(tmp)
    return chain


class _BlobCopier(threading.Thread):
    """Copy a member into a file (and hash the copy if asked) in the background."""

    def __init__(self, archive: str, member: Member, target: str, hash_it: bool):
        super().__init__(daemon=True)
        self.archive, self.member, self.target, self.hash_it = archive, member, target, hash_it
        self.digest: str | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with open(self.target, "wb") as out:
                copy_range(self.archive, self.member, out.fileno())
            if self.hash_it:
                self.digest = _file_digest(self.target)
        except BaseException as exc:  # handed to the loading thread, which raises it
            self.error = exc


def _file_digest(path: str) -> str:
    with open(path, "rb") as handle:
        return "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()


def _uncompressed_digest(path: str) -> str:
    verifier = dg.Verifier()
    with open(path, "rb", buffering=COPY_CHUNK) as handle:
        reader, _ = compression.open_decompressed(handle)
        compression.read_all_checked(reader, verifier.update, COPY_CHUNK)
    return verifier.digest


def copy_range(src_path: str, member: Member, out_fd: int) -> None:
    """Copy a member's bytes into ``out_fd`` in the kernel (copy_file_range), else by read/write."""
    with open(src_path, "rb", buffering=0) as src:
        offset, left = member.offset, member.size
        try:
            while left > 0:
                copied = os.copy_file_range(src.fileno(), out_fd, min(left, 1 << 30), offset)
                if copied == 0:
                    raise CorruptData(f"invalid archive: {member.name} is truncated")
                offset += copied
                left -= copied
            return
        except OSError:
            pass  # other filesystem or kernel without support: fall back below
        src.seek(offset)
        while left > 0:
            data = src.read(min(left, COPY_CHUNK))
            if not data:
                raise CorruptData(f"invalid archive: {member.name} is truncated")
            view = memoryview(data)
            while view:
                view = view[os.write(out_fd, view):]
            left -= len(data)
