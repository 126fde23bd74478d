"""``import``: turn a rootfs tarball into a one-layer image."""

from __future__ import annotations

import os
import tempfile

from dockerbank.errors import Offline
from dockerbank.image import compression
from dockerbank.image.store import ImageRecord, ImageStore, now_rfc3339
from dockerbank.oci import imageconfig

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import BinaryIO


def import_rootfs(
    store: ImageStore,
    source: BinaryIO,
    reference: str | None = None,
    changes: tuple[str, ...] = (),
    message: str = "",
    created: str | None = None,
) -> ImageRecord:
    """Import a (possibly compressed) rootfs tar as a new image, optionally tagged.

    The uncompressed tar is kept as the layer blob, so its digest is the layer's diff ID.
    ``created`` fixes the creation time (reproducible images); default: now.
    """
    container_config: dict = {}
    for change in changes:
        container_config = imageconfig.apply_change(container_config, change)
    store.config.tmp_dir.mkdir(parents=True, exist_ok=True)
    reader, _kind = compression.open_decompressed(source)
    fd, tmp_name = tempfile.mkstemp(prefix="import-", dir=store.config.tmp_dir)
    with store.lock():
        try:
            with os.fdopen(fd, "wb") as handle:
                compression.read_all_checked(reader, handle.write)
            # Unpack (which verifies the archive) before keeping the blob, so a hostile or
            # broken tarball leaves neither a layer nor an orphan blob behind.
            with open(tmp_name, "rb") as handle:
                layer = store.layers.add(None, handle)
            with open(tmp_name, "rb") as handle:
                blob, size = store.blobs.put_stream(handle, expected=layer.diff_id)
        finally:
            os.unlink(tmp_name)
        store.add_layer_blob(layer.diff_id, blob, compression.MEDIA_TAR, size)
        created = created or now_rfc3339()
        history = [{"created": created, "created_by": "", "comment": message or "Imported from tarball"}]
        config = imageconfig.new_config(created, [layer.diff_id], history, container_config)
        record = store.record_image(imageconfig.canonical_bytes(config))
    if reference:
        store.tag(record.id, reference)
        record = store.get(record.id)
    store.event("import", record.id, reference or record.id)
    return record


def refuse_url(source: str) -> None:
    """Dockerbank works offline: a URL source gets a clear error instead of a hang."""
    if source.startswith(("http://", "https://")):
        raise Offline(f"importing from a URL ({source}) is not supported offline: download the file and import it by path")

