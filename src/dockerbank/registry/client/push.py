"""``push``: layers (skipped by HEAD, mounted across repositories, uploaded whole or in chunks),
the config, and the manifest last.

Layers go out compressed as gzip (what docker pushes, and what every registry and runtime
accepts). A layer stored only as an uncompressed tar is compressed once (gzip level 1: the
push is limited by compression speed, not by bytes on a local link) and the compressed blob
is remembered with ``add_layer_blob``, so the next push reuses it and its digest is stable.
"""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from dockerbank.errors import NotFound
from dockerbank.image import compression
from dockerbank.image.store import ImageRecord, ImageStore
from dockerbank.oci import digest as dg
from dockerbank.oci import reference as refs
from dockerbank.registry import mediatypes as mt
from dockerbank.registry import policy
from dockerbank.registry.client.progress import CountingReader, Progress
from dockerbank.registry.client.transport import Transport
from dockerbank.registry.registries import RegistriesConfig

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import BinaryIO

    from dockerbank.streams import Reader, Source

PARALLEL_UPLOADS = 5  # docker's max-concurrent-uploads default
GZIP_TYPES = (compression.MEDIA_TAR_GZIP, compression.DOCKER_LAYER_GZIP)
CHUNK = 1 << 20


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    kind: str  # gzip | zstd | none


@dataclass
class PushResult:
    reference: refs.Reference
    digest: str
    size: int


class GzipReader:
    """Read a stream gzip-compressed: the same bytes every time (mtime 0, no name).

    The output is a series of gzip members (RFC 1952 allows that; Go's, Python's and
    zlib's readers all read them), one per 4 MiB segment. A segment whose first 64 KiB do
    not shrink at level 1 (already-compressed data: archives, images, random bytes) is
    stored at level 0, where deflate costs ~1 GB/s instead of ~20 MB/s; others get level 1.
    """

    SEGMENT = 4 << 20
    PROBE = 64 << 10

    def __init__(self, source: Reader, level: int = 1):
        self.source = source
        self.level = level
        self._buffer = bytearray()
        self._done = False

    def _segment(self) -> bytes:
        data = bytearray()
        while len(data) < self.SEGMENT:
            chunk = self.source.read(self.SEGMENT - len(data))
            if not chunk:
                break
            data += chunk
        return bytes(data)

    def _compress(self, data: bytes) -> bytes:
        probe = data[: self.PROBE]
        level = self.level
        if len(probe) == self.PROBE and len(zlib.compress(probe, self.level)) > 0.97 * len(probe):
            level = 0  # incompressible: store it, do not burn CPU on it
        compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
        return compressor.compress(data) + compressor.flush()

    def read(self, size: int = -1) -> bytes:
        want = CHUNK if size is None or size < 0 else size
        while len(self._buffer) < want and not self._done:
            data = self._segment()
            if data:
                self._buffer += self._compress(data)
            if len(data) < self.SEGMENT:
                self._done = True
                if not data and not self._buffer and not getattr(self, "_emitted", False):
                    self._buffer += self._compress(b"")  # an empty layer is still one gzip member
            self._emitted = True
        data = bytes(self._buffer[:want])
        del self._buffer[:want]
        return data


def stored_layer_blob(store: ImageStore, diff_id: str) -> Blob | None:
    """A compressed blob already stored for the layer: gzip first, then zstd."""
    rows = store.db.query("SELECT blob, media_type FROM layer_blobs WHERE diff_id = ?", (diff_id,))
    ranked = sorted(rows, key=lambda row: 0 if row["media_type"] in GZIP_TYPES else
                    1 if row["media_type"] == compression.MEDIA_TAR_ZSTD else 2)
    for row in ranked:
        kind = ("gzip" if row["media_type"] in GZIP_TYPES else
                "zstd" if row["media_type"] == compression.MEDIA_TAR_ZSTD else "none")
        if kind != "none" and store.blobs.has(row["blob"]):
            return Blob(row["blob"], store.blobs.size(row["blob"]), kind)
    return None


def build_manifest(config_bytes: bytes, layers: list[Blob]) -> tuple[bytes, str]:
    """A Docker schema 2 manifest for gzip layers, else an OCI manifest; (bytes, media type)."""
    docker = all(layer.kind == "gzip" for layer in layers)
    if docker:
        layer_type = {"gzip": mt.DOCKER_LAYER_GZIP}
        media_type, config_type = mt.DOCKER_MANIFEST, mt.DOCKER_CONFIG
    else:
        layer_type = {"gzip": compression.MEDIA_TAR_GZIP, "zstd": compression.MEDIA_TAR_ZSTD,
                      "none": compression.MEDIA_TAR}
        media_type, config_type = mt.OCI_MANIFEST, mt.OCI_CONFIG
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config_type, "size": len(config_bytes), "digest": dg.of_bytes(config_bytes)},
        "layers": [{"mediaType": layer_type[layer.kind], "size": layer.size, "digest": layer.digest}
                   for layer in layers],
    }
    return json.dumps(manifest, indent=3).encode(), media_type


class Pusher:
    """Pushes images from an ImageStore to one registry."""

    def __init__(self, store: ImageStore, transport: Transport, progress: Progress,
                 registries: RegistriesConfig, chunk_size: int | None = None):
        self.store = store
        self.transport = transport
        self.progress = progress
        self.registries = registries
        self.chunk_size = chunk_size

    def _scope(self, ref: refs.Reference) -> str:
        return f"repository:{ref.path}:pull,push"

    def check(self, ref: refs.Reference, image: ImageRecord) -> None:
        """Raise PolicyRefused if the license policy keeps ``image`` from ``ref``'s registry."""
        policy.check_push(json.loads(self.store.blobs.read(image.id)), ref.domain, self.registries, ref.familiar())

    def push(self, ref: refs.Reference, image: ImageRecord) -> PushResult:
        config_bytes = self.store.blobs.read(image.id)
        config = json.loads(config_bytes)
        self.check(ref, image)
        self.transport.authorize(self._scope(ref))
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        sources = self._mount_sources(ref, image)
        for diff_id in reversed(diff_ids):
            self.progress.status(dg.short_id(diff_id), "Preparing")
        # the database connection stays on this thread: workers compress and upload only
        plans = []
        for diff_id in diff_ids:
            blob = stored_layer_blob(self.store, diff_id)
            plans.append((diff_id, blob, None if blob else self.store.layer_tar(diff_id)))
        found: dict[str, Blob] = {}
        try:
            with ThreadPoolExecutor(max_workers=PARALLEL_UPLOADS, thread_name_prefix="push") as pool:
                futures = {pool.submit(self._push_layer, ref, diff_id, blob, tar, sources): diff_id
                           for diff_id, blob, tar in plans}
                for future in as_completed(futures):
                    blob, compressed = future.result()
                    if compressed:  # remembered at once, so a failed push still keeps it for the next
                        self.store.add_layer_blob(futures[future], blob.digest, compression.MEDIA_TAR_GZIP, blob.size)
                    found[futures[future]] = blob
        finally:
            for _diff_id, _blob, tar in plans:
                if tar is not None:
                    tar.close()
        layers = [found[diff_id] for diff_id in diff_ids]
        self._upload_blob(ref, dg.of_bytes(config_bytes), len(config_bytes),
                          lambda: io.BytesIO(config_bytes), sources)
        manifest, media_type = build_manifest(config_bytes, layers)
        response = self.transport.request(
            "PUT", f"/v2/{ref.path}/manifests/{ref.tag or refs.DEFAULT_TAG}",
            headers={"Content-Type": media_type}, body=manifest, scope=self._scope(ref), ok=(200, 201),
        )
        with response:
            response.read()
            said = response.headers.get("Docker-Content-Digest")
        digest = dg.of_bytes(manifest)
        if said and said != digest:
            from dockerbank.errors import CorruptData

            raise CorruptData(f"registry stored the manifest as {said}, but its digest is {digest}")
        self.store.add_repo_digest(image.id, ref.repository, digest)
        self.progress.line(f"{ref.tag or refs.DEFAULT_TAG}: digest: {digest} size: {len(manifest)}")
        return PushResult(ref, digest, len(manifest))

    def _mount_sources(self, ref: refs.Reference, image: ImageRecord) -> list[str]:
        """Repositories of the same registry that already hold this image's blobs (for mounts)."""
        # this image's own repositories first: they surely hold its blobs
        rows = self.store.db.query(
            "SELECT repository FROM repo_digests GROUP BY repository ORDER BY MAX(image_id = ?) DESC, repository",
            (image.id,),
        )
        found = []
        for row in rows:
            domain, _, path = row["repository"].partition("/")
            if domain == ref.domain and path != ref.path:
                found.append(path)
        return found

    def _push_layer(self, ref: refs.Reference, diff_id: str, blob: Blob | None, tar: Source | None,
                    sources: list[str]) -> tuple[Blob, bool]:
        """(worker thread) Compress the layer if no compressed blob is stored, then upload it."""
        compressed = blob is None
        if blob is None:
            assert tar is not None, "a layer without a stored blob comes with its tar"
            digest, size = self.store.blobs.put_stream(GzipReader(tar))
            blob = Blob(digest, size, "gzip")
        final = blob
        outcome = self._upload_blob(ref, final.digest, final.size, lambda: self.store.blobs.open(final.digest),
                                    sources, item=dg.short_id(diff_id))
        self.progress.status(dg.short_id(diff_id), outcome)
        return blob, compressed

    def _upload_blob(self, ref: refs.Reference, digest: str, size: int, opener: Callable[[], BinaryIO],
                     sources: list[str], item: str | None = None) -> str:
        """Make sure the registry has the blob in ``ref``'s repository; say how it got there."""
        scope = self._scope(ref)
        base = f"/v2/{ref.path}/blobs"
        with self.transport.request("HEAD", f"{base}/{digest}", scope=scope, ok=(200, 404)) as response:
            response.read()
            if response.status == 200:
                return "Layer already exists"
        location = None
        for source in sources:
            with self.transport.request("POST", f"{base}/uploads/?mount={digest}&from={source}",
                                        scope=scope, ok=(201, 202)) as response:
                response.read()
                if response.status == 201:
                    return f"Mounted from {source}"
                location = response.headers.get("Location")
            break  # a refused mount opened an upload session: use it
        if location is None:
            with self.transport.request("POST", f"{base}/uploads/", scope=scope, ok=(202,)) as response:
                response.read()
                location = response.headers.get("Location")
        if not location:
            raise NotFound(f"registry {ref.domain} gave no upload location")
        if item:
            self.progress.start(item, size, "Pushing")
        with opener() as handle:
            upload: Reader = _CountingFile(handle, self.progress, item) if item else handle
            body: Reader | None
            if self.chunk_size and size > self.chunk_size:
                offset = 0
                while offset < size:
                    data = upload.read(self.chunk_size)
                    if not data:
                        break
                    with self.transport.request(
                        "PATCH", location, scope=scope, ok=(202,), body=data,
                        headers={"Content-Type": "application/octet-stream",
                                 "Content-Range": f"{offset}-{offset + len(data) - 1}",
                                 "Content-Length": str(len(data))},
                    ) as response:
                        response.read()
                        location = response.headers.get("Location") or location
                    offset += len(data)
                body, length = None, "0"
            else:
                body, length = upload, str(size)
            separator = "&" if "?" in location else "?"
            with self.transport.request(
                "PUT", f"{location}{separator}digest={digest}", scope=scope, ok=(201, 204), body=body,
                headers={"Content-Type": "application/octet-stream", "Content-Length": length},
            ) as response:
                response.read()
        return "Pushed"


class _CountingFile(CountingReader):
    """A counting reader that http.client can also seek (rewound for an auth retry)."""

    def tell(self) -> int:
        return self.inner.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.inner.seek(offset, whence)


def push_image(store: ImageStore, name: str, transport: Transport, progress: Progress,
               registries: RegistriesConfig, all_tags: bool = False, chunk_size: int | None = None
               ) -> list[PushResult]:
    """Push ``name`` (or every local tag of its repository with ``all_tags``)."""
    ref = refs.parse(name)
    pusher = Pusher(store, transport, progress, registries, chunk_size)
    if all_tags:
        rows = store.db.query("SELECT tag, image_id FROM tags WHERE repository = ? ORDER BY tag", (ref.repository,))
        if not rows:
            raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_repository}")
        targets = [(ref.with_tag(row["tag"]), store.get(row["image_id"])) for row in rows]
    else:
        try:
            targets = [(ref, store.resolve(ref.familiar()))]
        except NotFound as exc:
            raise NotFound(f"An image does not exist locally with the tag: {ref.familiar()}") from exc
    for target, image in targets:  # refused before any output: the API answers with the refusal's status
        pusher.check(target, image)
    progress.line(f"The push refers to repository [{ref.repository if ref.domain != refs.DEFAULT_DOMAIN else 'docker.io/' + ref.path}]")
    return [pusher.push(target, image) for target, image in targets]
