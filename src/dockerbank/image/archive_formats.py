"""The two image archive formats, as pure data: what to read from an archive, what to write into one.

- docker-archive (``docker save``): ``manifest.json`` = ``[{"Config": "<hex>.json", "RepoTags": [...],
  "Layers": ["<dir>/layer.tar", ...]}]`` plus a legacy ``repositories`` file and per-layer ``VERSION``
  and ``json`` files.
- OCI image layout (``podman save --format oci-archive``, ``skopeo copy ... oci-archive:``):
  ``oci-layout``, ``index.json`` (possibly pointing at a nested index), ``blobs/sha256/<hex>``.

No I/O here: functions take bytes read from the archive (by a callable) and return plans.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from dockerbank.errors import CorruptData
from dockerbank.oci import digest as dg
from dockerbank.oci import imageconfig
from dockerbank.oci import reference as refs

OCI_LAYOUT = '{"imageLayoutVersion":"1.0.0"}'
MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = {MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST}
MANIFEST_TYPES = {MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST}
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"

_MAX_NESTING = 8


@dataclass(frozen=True)
class ArchiveLayer:
    """One layer to read from the archive: its member path and the digest its bytes must have (if known)."""

    path: str
    blob_digest: str | None = None
    media_type: str | None = None


@dataclass
class ArchiveImage:
    """One image to load: its config member, expected config digest (OCI), layers bottom first, tags."""

    config_path: str
    config_digest: str | None
    layers: list[ArchiveLayer]
    tags: list[str] = field(default_factory=list)


def _json(data: bytes, what: str):
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptData(f"invalid archive: {what} is not valid JSON") from exc


def blob_path(digest: str) -> str:
    """Where a blob lives in an OCI layout."""
    return "blobs/sha256/" + dg.hex_of(digest)


# --- reading -----------------------------------------------------------------------------


def parse_docker_manifest(data: bytes) -> list[ArchiveImage]:
    """The images a docker-archive's ``manifest.json`` lists."""
    entries = _json(data, "manifest.json")
    if not isinstance(entries, list):
        raise CorruptData("invalid archive: manifest.json is not a list")
    images = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise CorruptData("invalid archive: manifest.json entry without Config")
        layers = entry.get("Layers") or []
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise CorruptData("invalid archive: manifest.json Layers is not a list of paths")
        tags = entry.get("RepoTags") or []
        if not isinstance(tags, list) or not all(isinstance(x, str) for x in tags):
            raise CorruptData("invalid archive: manifest.json RepoTags is not a list of names")
        for tag in tags:
            refs.parse(tag)  # a malformed name is refused before anything is stored
        images.append(ArchiveImage(entry["Config"], None, [ArchiveLayer(p) for p in layers], list(tags)))
    return images


def _platform_matches(descriptor: dict) -> bool:
    platform = descriptor.get("platform")
    if not isinstance(platform, dict):
        return True
    return platform.get("os", "linux") == "linux" and platform.get("architecture") in (None, imageconfig.host_arch())


def _name_of(descriptor: dict) -> str | None:
    """The reference an index entry names: containerd's full name, else a ref.name that is a full reference.

    A bare ``org.opencontainers.image.ref.name`` such as ``latest`` is only a tag without a repository,
    so the image loads untagged.
    """
    annotations = descriptor.get("annotations") or {}
    for key in (ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME):
        name = annotations.get(key)
        if isinstance(name, str) and (":" in name or "/" in name) and refs.looks_like_reference(name):
            return name
    return None


def parse_oci_index(read: Callable[[str], bytes]) -> list[ArchiveImage]:
    """The images of an OCI layout; ``read(path)`` returns a member's bytes. Nested indexes are followed."""
    index = _json(read("index.json"), "index.json")
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise CorruptData("invalid archive: index.json has no manifests list")
    images: dict[str, ArchiveImage] = {}  # by manifest digest: one image may be listed once per tag
    order: list[str] = []
    for descriptor in index["manifests"]:
        name = _name_of(descriptor) if isinstance(descriptor, dict) else None
        manifest_digest, image = _resolve_descriptor(read, descriptor, 0)
        if image is None:
            continue
        if manifest_digest not in images:
            images[manifest_digest] = image
            order.append(manifest_digest)
        if name and name not in images[manifest_digest].tags:
            images[manifest_digest].tags.append(name)
    if not order:
        raise CorruptData(f"invalid archive: no image for linux/{imageconfig.host_arch()} in index.json")
    return [images[d] for d in order]


def _read_blob(read: Callable[[str], bytes], descriptor: dict) -> tuple[str, bytes]:
    try:
        digest = dg.validate(descriptor.get("digest"))
    except Exception as exc:
        raise CorruptData(f"invalid archive: bad descriptor digest {descriptor.get('digest')!r}") from exc
    data = read(blob_path(digest))
    if dg.of_bytes(data) != digest:
        raise CorruptData(f"invalid archive: blob {digest} does not match its digest")
    return digest, data


def _resolve_descriptor(read, descriptor, depth: int) -> tuple[str, ArchiveImage | None]:
    if not isinstance(descriptor, dict):
        raise CorruptData("invalid archive: a descriptor is not an object")
    if depth > _MAX_NESTING:
        raise CorruptData("invalid archive: indexes nested too deeply")
    digest, data = _read_blob(read, descriptor)
    document = _json(data, f"blob {digest}")
    media = descriptor.get("mediaType") or document.get("mediaType")
    if media in INDEX_TYPES or (media is None and "manifests" in document):
        for child in document.get("manifests") or []:
            if isinstance(child, dict) and _platform_matches(child):
                found_digest, image = _resolve_descriptor(read, child, depth + 1)
                if image is not None:
                    return found_digest, image
        return digest, None
    if media not in MANIFEST_TYPES and "config" not in document:
        raise CorruptData(f"invalid archive: unsupported manifest media type {media!r}")
    config = document.get("config")
    if not isinstance(config, dict) or not isinstance(document.get("layers", []), list):
        raise CorruptData(f"invalid archive: manifest {digest} has no config")
    layers = []
    for layer in document.get("layers") or []:
        if not isinstance(layer, dict):
            raise CorruptData(f"invalid archive: manifest {digest} has a bad layer descriptor")
        layer_digest = layer.get("digest")
        if not isinstance(layer_digest, str) or not dg.is_digest(layer_digest):
            raise CorruptData(f"invalid archive: bad layer digest {layer_digest!r}")
        layers.append(ArchiveLayer(blob_path(layer_digest), layer_digest, layer.get("mediaType")))
    config_digest = config.get("digest")
    if not isinstance(config_digest, str) or not dg.is_digest(config_digest):
        raise CorruptData(f"invalid archive: bad config digest {config_digest!r}")
    return digest, ArchiveImage(blob_path(config_digest), config_digest, layers)


# --- writing -----------------------------------------------------------------------------


def canonical_json(value) -> bytes:
    """Compact, key-sorted JSON: the same input always gives the same bytes (and digests)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def docker_manifest(entries: list[tuple[str, list[str], list[str]]]) -> bytes:
    """``manifest.json`` from (config path, familiar repo tags, layer paths) per image."""
    return json.dumps(
        [{"Config": config, "RepoTags": tags or None, "Layers": layers} for config, tags, layers in entries],
        separators=(",", ":"),
    ).encode()


def docker_repositories(tops: dict[str, str]) -> bytes:
    """The legacy ``repositories`` file: {familiar repo: {tag: top layer dir}} from {familiar ref: top dir}."""
    repos: dict[str, dict[str, str]] = {}
    for name, top in tops.items():
        ref = refs.parse(name)
        repos.setdefault(ref.familiar_repository, {})[ref.tag or refs.DEFAULT_TAG] = top
    return canonical_json(repos)


def legacy_layer_json(layer_dir: str, parent_dir: str | None) -> bytes:
    """The v1 ``<dir>/json`` docker writes per layer (only read by pre-1.10 loaders)."""
    doc = {"id": layer_dir, "created": "1970-01-01T00:00:00Z", "container_config": {}, "os": "linux"}
    if parent_dir:
        doc["parent"] = parent_dir
    return canonical_json(doc)


def oci_manifest(config_digest: str, config_size: int, layers: list[tuple[str, str, int]]) -> bytes:
    """An OCI image manifest from the config descriptor and (media type, digest, size) per layer."""
    return canonical_json({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": m, "digest": d, "size": s} for m, d, s in layers],
    })


def oci_index(entries: list[tuple[str, int, str | None]]) -> bytes:
    """``index.json`` from (manifest digest, size, fully qualified name or None) per entry.

    The name goes in both the OCI ref.name annotation (read by podman and skopeo) and
    containerd's image name annotation (read by docker 25+).
    """
    manifests = []
    for digest, size, name in entries:
        descriptor: dict = {"mediaType": MEDIA_OCI_MANIFEST, "digest": digest, "size": size}
        if name:
            descriptor["annotations"] = {ANNOTATION_CONTAINERD_NAME: name, ANNOTATION_REF_NAME: name}
        manifests.append(descriptor)
    return canonical_json({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": manifests})
