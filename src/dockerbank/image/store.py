"""The image store: image records, tags and repo digests over blobs and layers.

An image is its config blob (its ID is the config's digest) plus the layer stack named by
the config's ``rootfs.diff_ids``. Rows are written after the blobs and layers they name.
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from collections.abc import Iterator

from dockerbank.config import Config
from dockerbank.errors import AmbiguousReference, CorruptData, InvalidArgument, NotFound
from dockerbank.image import compression
from dockerbank.image.blobs import BlobStore
from dockerbank.image.layers import LayerStore
from dockerbank.oci import digest as dg
from dockerbank.oci import reference as refs
from dockerbank.state.db import Database

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    import builtins  # annotations in classes whose list() method hides the builtin

    from dockerbank.streams import Source


@dataclass
class ImageRecord:
    """One stored image as the store knows it."""

    id: str
    created: str
    added: str
    size: int
    top_chain: str | None
    tags: list[str] = field(default_factory=list)          # fully qualified repo:tag
    repo_digests: list[str] = field(default_factory=list)  # fully qualified repo@digest

    @property
    def short_id(self) -> str:
        return dg.short_id(self.id)


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ImageStore:
    """Images, tags and digests; owns the blob and layer stores below it."""

    def __init__(self, config: Config, db: Database):
        self.config = config
        self.db = db
        self.blobs = BlobStore(config.blobs_dir, config.tmp_dir)
        self.layers = LayerStore(config.layers_dir, config.tmp_dir, db)

    def event(self, action: str, actor: str, name: str) -> None:
        """Record an image event (``docker events``) for what the CLI or the API did."""
        from dockerbank.events.log import emit

        emit(self.config, "image", action, actor, {"name": name})

    @contextmanager
    def lock(self, exclusive: bool = False) -> Iterator[None]:
        """Hold the store's garbage-collection lock.

        Writers that put blobs and layers in place before recording the image that uses
        them hold it shared; garbage collection holds it exclusive, so it never removes
        what a concurrent load has stored but not yet recorded.
        """
        self.config.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.config.root / "images.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    # --- reading -------------------------------------------------------------------------

    def get(self, image_id: str) -> ImageRecord:
        row = self.db.query_one("SELECT * FROM images WHERE id = ?", (image_id,))
        if row is None:
            raise NotFound(f"No such image: {image_id}")
        return self._record(row)

    def list(self) -> list[ImageRecord]:
        return [self._record(row) for row in self.db.query("SELECT * FROM images ORDER BY added DESC")]

    def image_config(self, image_id: str) -> dict:
        """The parsed image config (the blob the ID names)."""
        try:
            return json.loads(self.blobs.read(image_id))
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptData(f"image config {image_id} is not valid JSON") from exc

    def diff_ids(self, image_id: str) -> builtins.list[str]:
        return list(self.image_config(image_id).get("rootfs", {}).get("diff_ids", []))

    def resolve(self, name: str) -> ImageRecord:
        """Find an image by full ID, ``sha256:`` ID, reference (tag or digest) or unique ID prefix."""
        if dg.is_digest(name) or dg.is_full_hex(name):
            image_id = name if name.startswith("sha256:") else f"sha256:{name}"
            row = self.db.query_one("SELECT * FROM images WHERE id = ?", (image_id,))
            if row is not None:
                return self._record(row)
        ref = None
        if refs.looks_like_reference(name):
            ref = refs.parse(name)
            found = self._lookup_reference(ref)
            if found is not None:
                return found
        prefix = name[len("sha256:"):] if name.startswith("sha256:") else name
        if 0 < len(prefix) <= 64 and all(c in "0123456789abcdef" for c in prefix):
            rows = self.db.query("SELECT * FROM images WHERE id LIKE ?", (f"sha256:{prefix}%",))
            if len(rows) > 1:
                raise AmbiguousReference(f"image ID prefix {prefix!r} is ambiguous: it matches {len(rows)} images")
            if rows:
                return self._record(rows[0])
        shown = ref.familiar() if ref else name
        raise NotFound(f"No such image: {shown}")

    def _lookup_reference(self, ref: refs.Reference) -> ImageRecord | None:
        if ref.digest:
            row = self.db.query_one(
                "SELECT image_id FROM repo_digests WHERE repository = ? AND digest = ?",
                (ref.repository, ref.digest),
            )
        else:
            row = self.db.query_one("SELECT image_id FROM tags WHERE ref = ?", (ref.name_tag,))
        return self.get(row["image_id"]) if row else None

    def _record(self, row) -> ImageRecord:
        tags = [r["ref"] for r in self.db.query("SELECT ref FROM tags WHERE image_id = ? ORDER BY ref", (row["id"],))]
        digests = [
            f"{r['repository']}@{r['digest']}"
            for r in self.db.query("SELECT * FROM repo_digests WHERE image_id = ? ORDER BY repository", (row["id"],))
        ]
        return ImageRecord(row["id"], row["created"], row["added"], row["size"], row["top_chain"], tags, digests)

    # --- writing -------------------------------------------------------------------------

    def add_layer_blob(self, diff_id: str, blob: str, media_type: str, size: int) -> None:
        """Remember that ``blob`` holds (a compressed form of) the layer ``diff_id``."""
        with self.db.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO layer_blobs (diff_id, blob, media_type, size) VALUES (?,?,?,?)",
                (diff_id, blob, media_type, size),
            )

    def record_image(self, config_bytes: bytes) -> ImageRecord:
        """Store a config whose layers are already present and record the image; return it.

        Raises NotFound if a layer of the config is missing: images are recorded last.
        """
        image_id = self.blobs.put_bytes(config_bytes)
        config = self.image_config(image_id)
        diff_ids = config.get("rootfs", {}).get("diff_ids", [])
        chains = dg.chain_ids(diff_ids)
        size = 0
        for chain_id in chains:
            size += self.layers.get(chain_id).size
        top = chains[-1] if chains else None
        with self.db.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO images (id, created, added, size, top_chain) VALUES (?,?,?,?,?)",
                (image_id, config.get("created") or "1970-01-01T00:00:00Z", now_rfc3339(), size, top),
            )
        return self.get(image_id)

    def tag(self, image_id: str, target: str) -> refs.Reference:
        """Point ``target`` (a reference without digest) at ``image_id``; moves it if it exists."""
        ref = refs.parse(target)
        if ref.digest:
            raise InvalidArgument(f"refusing to create a tag with a digest reference: {target}")
        with self.db.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO tags (ref, repository, tag, image_id) VALUES (?,?,?,?)",
                (ref.name_tag, ref.repository, ref.tag, image_id),
            )
        return ref

    def untag(self, target: str) -> str:
        """Remove a tag; return the image ID it pointed to."""
        ref = refs.parse(target)
        row = self.db.query_one("SELECT image_id FROM tags WHERE ref = ?", (ref.name_tag,))
        if row is None:
            raise NotFound(f"No such image: {ref.familiar()}")
        with self.db.write() as conn:
            conn.execute("DELETE FROM tags WHERE ref = ?", (ref.name_tag,))
        return row["image_id"]

    def set_parent(self, image_id: str, parent: str | None) -> None:
        """Record the local image ``image_id`` was made from (a build step's base, a commit's image)."""
        with self.db.write() as conn:
            conn.execute("UPDATE images SET parent = ? WHERE id = ?", (parent, image_id))

    def parent_of(self, image_id: str) -> str | None:
        row = self.db.query_one("SELECT parent FROM images WHERE id = ?", (image_id,))
        return row["parent"] if row else None

    def intermediate_ids(self) -> set[str]:
        """Untagged images that another image was made from: what ``images`` hides without ``-a``."""
        rows = self.db.query(
            "SELECT DISTINCT p.id FROM images p JOIN images c ON c.parent = p.id "
            "WHERE NOT EXISTS (SELECT 1 FROM tags t WHERE t.image_id = p.id)"
        )
        return {row["id"] for row in rows}

    def add_repo_digest(self, image_id: str, repository: str, manifest_digest: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO repo_digests (repository, digest, image_id) VALUES (?,?,?)",
                (repository, manifest_digest, image_id),
            )

    def layer_tar(self, diff_id: str) -> Source:
        """The uncompressed tar of a layer, read from whichever stored blob holds it."""
        rows = self.db.query(
            "SELECT blob FROM layer_blobs WHERE diff_id = ? ORDER BY media_type = ? DESC",
            (diff_id, compression.MEDIA_TAR),
        )
        for row in rows:
            if self.blobs.has(row["blob"]):
                reader, _ = compression.open_decompressed(self.blobs.open(row["blob"]))
                return reader
        raise NotFound(f"no stored blob holds layer {diff_id}")
