"""``pull``: manifest (or index, with platform selection), config, layers in parallel, verified.

Order of writes keeps the store consistent: blobs land only when their digest checks out,
layers are unpacked and verified against the config's diff IDs, and the image is recorded
LAST; a pull that breaks anywhere before leaves no image (verified blobs stay, so the next
pull of the same image resumes where this one stopped).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from dockerbank.errors import CorruptData, InvalidArgument, NotFound, NotSupported, Offline
from dockerbank.image.store import ImageRecord, ImageStore
from dockerbank.oci import digest as dg
from dockerbank.oci import reference as refs
from dockerbank.oci.imageconfig import host_arch
from dockerbank.registry import mediatypes as mt
from dockerbank.registry.client.progress import CountingReader, Progress
from dockerbank.registry.client.transport import Response, Transport

MAX_MANIFEST = 4 << 20
PARALLEL_DOWNLOADS = 3  # docker's max-concurrent-downloads default
CHUNK = 1 << 20


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")


def parse_platform(text: str | None) -> Platform:
    """``linux/amd64``, ``linux/arm64/v8``, ``amd64`` -> Platform; None -> this host."""
    if not text:
        return Platform("linux", host_arch())
    parts = text.lower().split("/")
    if len(parts) == 1:
        return Platform("linux", parts[0])
    if len(parts) > 3 or not all(parts):
        raise InvalidArgument(f"invalid platform {text!r}: expected os/arch[/variant]")
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


def select_manifest(index: dict, wanted: Platform) -> dict:
    """The descriptor of ``index`` that fits ``wanted`` (attestations and unknown platforms skipped)."""
    candidates = []
    for descriptor in index.get("manifests") or []:
        platform = descriptor.get("platform") or {}
        annotations = descriptor.get("annotations") or {}
        if annotations.get("vnd.docker.reference.type") == "attestation-manifest":
            continue
        if platform.get("os") != wanted.os or platform.get("architecture") != wanted.architecture:
            continue
        variant = platform.get("variant")
        arm64_alias = wanted.architecture == "arm64" and {variant, wanted.variant} <= {"v8", ""}
        if wanted.variant and variant and variant != wanted.variant and not arm64_alias:
            continue
        candidates.append(descriptor)
    if not candidates:
        raise NotFound(f"no matching manifest for {wanted} in the manifest list entries")
    if wanted.variant:  # an exact variant beats a missing one
        exact = [d for d in candidates if (d.get("platform") or {}).get("variant") == wanted.variant]
        if exact:
            return exact[0]
    return candidates[0]


@dataclass
class PullResult:
    reference: refs.Reference
    image: ImageRecord
    digest: str        # what the registry calls it (the index digest when there was an index)
    downloaded: bool   # False: the image was already here


class ResumingReader:
    """A blob download that survives broken connections: it asks again from the byte it reached.

    ``open_at(offset)`` returns a response from ``offset`` on (a Range request; a server that
    ignores Range answers 200 from the start, and the bytes already read are skipped). After
    ``retries`` breaks the error goes to the caller; the digest is checked over the whole stream.
    """

    def __init__(self, open_at: Callable[[int], Response], retries: int = 3):
        self.open_at = open_at
        self.retries = retries
        self.offset = 0
        self.resumed = 0
        self.response = open_at(0)

    def read(self, size: int = -1) -> bytes:
        while True:
            try:
                data = self.response.read(size)
            except Offline:
                if self.resumed >= self.retries:
                    raise
                self.resumed += 1
                self.response.close(reusable=False)
                self.response = self._reopen()
                continue
            self.offset += len(data)
            return data

    def _reopen(self) -> Response:
        response = self.open_at(self.offset)
        if response.status == 206:
            start = (response.headers.get("Content-Range") or "").removeprefix("bytes ").split("-")[0]
            if start != str(self.offset):
                response.close(reusable=False)
                raise Offline(f"the registry resumed the download at byte {start}, not {self.offset}")
            return response
        skip = self.offset  # 200: the whole blob again
        while skip:
            chunk = response.read(min(skip, CHUNK))
            if not chunk:
                raise Offline("the registry sent less on a retry than before")
            skip -= len(chunk)
        return response

    def close(self) -> None:
        self.response.close()  # kept alive when read to the end


class Puller:
    """Pulls images from one registry into an ImageStore."""

    def __init__(self, store: ImageStore, transport: Transport, progress: Progress, platform: str | None = None):
        self.store = store
        self.transport = transport
        self.progress = progress
        self.platform = parse_platform(platform)
        self.explicit_platform = platform is not None
        self._blob_locks: dict[str, threading.Lock] = {}

    def _scope(self, ref: refs.Reference) -> str:
        return f"repository:{ref.path}:pull"

    def fetch_manifest(self, ref: refs.Reference, reference: str) -> tuple[bytes, dict, str, str]:
        """(body, document, media type, digest) of a manifest, verified against its digest."""
        response = self.transport.request(
            "GET", f"/v2/{ref.path}/manifests/{reference}", headers={"Accept": mt.ACCEPT}, scope=self._scope(ref),
        )
        with response:
            body = response.read(MAX_MANIFEST + 1)
            declared = (response.headers.get("Content-Type") or "").split(";")[0].strip()
            header_digest = response.headers.get("Docker-Content-Digest")
        if len(body) > MAX_MANIFEST:
            raise CorruptData(f"manifest of {ref.familiar()} is larger than {MAX_MANIFEST} bytes")
        digest = dg.of_bytes(body)
        if dg.is_digest(reference) and digest != reference:
            raise CorruptData(f"manifest digest mismatch: asked for {reference}, received {digest}")
        if header_digest and header_digest.startswith("sha256:") and header_digest != digest:
            raise CorruptData(f"manifest digest mismatch: registry says {header_digest}, content is {digest}")
        doc, media_type = mt.parse_manifest(body, declared)
        return body, doc, media_type, digest

    def list_tags(self, ref: refs.Reference) -> list[str]:
        tags: list[str] = []
        path: str | None = f"/v2/{ref.path}/tags/list?n=1000"
        while path:
            response = self.transport.request("GET", path, scope=self._scope(ref))
            with response:
                data = json.loads(response.read())
                link = response.headers.get("Link")
            tags.extend(data.get("tags") or [])
            path = link.split(";")[0].strip().strip("<>") if link and 'rel="next"' in link else None
        return tags

    def pull(self, ref: refs.Reference) -> PullResult:
        """Pull one reference (tag or digest)."""
        self.transport.authorize(self._scope(ref))
        reference = ref.digest or ref.tag or refs.DEFAULT_TAG
        self.progress.line(f"{reference}: Pulling from {ref.path}")
        _body, doc, media_type, top_digest = self.fetch_manifest(ref, reference)
        if media_type in mt.INDEXES:
            chosen = select_manifest(doc, self.platform)
            _body, doc, media_type, _ = self.fetch_manifest(ref, chosen["digest"])
        if media_type not in mt.IMAGE_MANIFESTS:
            raise NotSupported(f"{ref.familiar()} is a {media_type}, not an image this engine can run")
        config_desc = doc.get("config") or {}
        config_bytes = self._fetch_small_blob(ref, config_desc)
        try:
            config = json.loads(config_bytes)
        except ValueError as exc:
            raise CorruptData(f"image config of {ref.familiar()} is not valid JSON") from exc
        if self.explicit_platform and (config.get("os"), config.get("architecture")) != (
                self.platform.os, self.platform.architecture):
            raise InvalidArgument(
                f"image {ref.familiar()} is for {config.get('os')}/{config.get('architecture')}, "
                f"not the requested platform {self.platform}")
        layers = [d for d in doc.get("layers") or []]
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        if len(layers) != len(diff_ids):
            raise CorruptData(f"manifest of {ref.familiar()} lists {len(layers)} layers but its config {len(diff_ids)}")
        image_id = dg.of_bytes(config_bytes)
        existed = self.store.db.query_one("SELECT 1 FROM images WHERE id = ?", (image_id,)) is not None
        if not existed:
            self._pull_layers(ref, layers, diff_ids)
        record = self.store.record_image(config_bytes)  # last: only now is the image visible
        if ref.tag and not ref.digest:
            self.store.tag(record.id, ref.name_tag)
        self.store.add_repo_digest(record.id, ref.repository, top_digest)
        self.progress.line(f"Digest: {top_digest}")
        shown = ref.familiar()
        self.progress.line(f"Status: {'Image is up to date' if existed else 'Downloaded newer image'} for {shown}")
        return PullResult(ref, self.store.get(record.id), top_digest, not existed)

    def _fetch_small_blob(self, ref: refs.Reference, descriptor: dict) -> bytes:
        digest = dg.validate(descriptor.get("digest", ""))
        if self.store.blobs.has(digest):
            return self.store.blobs.read(digest)
        response = self.transport.request("GET", f"/v2/{ref.path}/blobs/{digest}", scope=self._scope(ref))
        with response:
            data = response.read(MAX_MANIFEST + 1)
        if dg.of_bytes(data) != digest:
            raise CorruptData(f"blob digest mismatch: expected {digest}, got {dg.of_bytes(data)}")
        return data

    def _pull_layers(self, ref: refs.Reference, layers: list[dict], diff_ids: list[str]) -> None:
        chains = dg.chain_ids(diff_ids)
        plan: list[tuple[dict, str, str, str | None]] = []
        for index, (descriptor, diff_id) in enumerate(zip(layers, diff_ids)):
            if descriptor.get("urls"):
                raise NotSupported(f"{ref.familiar()} has a foreign layer (urls); those are not pulled")
            dg.validate(descriptor.get("digest", ""))
            parent = chains[index - 1] if index else None
            plan.append((descriptor, diff_id, chains[index], parent))
        futures: dict[int, Future | None] = {}
        with ThreadPoolExecutor(max_workers=PARALLEL_DOWNLOADS, thread_name_prefix="pull") as pool:
            for index, (descriptor, _diff_id, chain, _parent) in enumerate(plan):
                item = dg.short_id(descriptor["digest"])
                if self.store.layers.has(chain):
                    self.progress.status(item, "Already exists")
                    futures[index] = None
                    continue
                self.progress.status(item, "Pulling fs layer")
                futures[index] = pool.submit(self._download, ref, descriptor)
            try:
                # unpack in order, each as soon as its blob is here, while later ones download
                for index, (descriptor, diff_id, chain, parent) in enumerate(plan):
                    future = futures[index]
                    if future is None:
                        continue
                    future.result()
                    item = dg.short_id(descriptor["digest"])
                    self.progress.status(item, "Extracting")
                    with self.store.blobs.open(descriptor["digest"]) as handle:
                        self.store.layers.add(parent, handle, expected_diff_id=diff_id)
                    self.store.add_layer_blob(diff_id, descriptor["digest"],
                                              descriptor.get("mediaType") or mt.DOCKER_LAYER_GZIP,
                                              self.store.blobs.size(descriptor["digest"]))
                    self.progress.status(item, "Pull complete")
            except BaseException:
                for future in futures.values():
                    if future is not None:
                        future.cancel()
                raise

    def _download(self, ref: refs.Reference, descriptor: dict) -> None:
        digest = descriptor["digest"]
        item = dg.short_id(digest)
        if self.store.blobs.has(digest):  # kept from an earlier, interrupted pull: verified already
            self.progress.status(item, "Download complete")
            return
        path, scope = f"/v2/{ref.path}/blobs/{digest}", self._scope(ref)

        def open_at(offset: int) -> Response:
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            return self.transport.request("GET", path, headers=headers, scope=scope, ok=(200, 206))

        reader = ResumingReader(open_at)
        try:
            self.progress.start(item, int(descriptor.get("size") or 0), "Downloading")
            stream = CountingReader(reader, self.progress, item)
            try:
                _digest, size = self.store.blobs.put_stream(stream, expected=digest)
            except CorruptData as exc:
                raise CorruptData(f"layer {digest} of {ref.familiar()} failed verification: {exc}") from exc
        finally:
            reader.close()
        if descriptor.get("size") is not None and size != descriptor["size"]:
            self.store.blobs.delete(digest)
            raise CorruptData(f"layer {digest} has {size} bytes, the manifest says {descriptor['size']}")
        self.progress.status(item, "Verifying Checksum")
        self.progress.status(item, "Download complete")


def pull_image(store: ImageStore, name: str, transport: Transport, progress: Progress,
               platform: str | None = None, all_tags: bool = False) -> list[PullResult]:
    """Pull ``name`` (or every tag of its repository with ``all_tags``); return what was pulled."""
    ref = refs.parse(name)
    puller = Puller(store, transport, progress, platform)
    if not all_tags:
        return [puller.pull(ref)]
    if ref.digest or (ref.tag and ref.tag != refs.DEFAULT_TAG and ":" in name.rsplit("/", 1)[-1]):
        raise InvalidArgument("tag can't be used with --all-tags/-a")
    results = []
    for tag in puller.list_tags(ref):
        results.append(puller.pull(ref.with_tag(tag)))
    return results
