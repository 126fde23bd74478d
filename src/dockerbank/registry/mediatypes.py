"""Manifest media types of the OCI image spec and Docker's schema 2 (pure constants and parsing)."""

from __future__ import annotations

import json

from dockerbank.errors import CorruptData

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

IMAGE_MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEXES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = IMAGE_MANIFESTS + INDEXES
ACCEPT = ", ".join(MANIFEST_TYPES)


def parse_manifest(body: bytes, declared: str | None = None) -> tuple[dict, str]:
    """Parse a manifest body; return (document, media type).

    The media type is the document's own ``mediaType`` when present, else the declared
    one (the Content-Type of a request or response), else guessed from the shape.
    """
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptData(f"manifest is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise CorruptData("manifest is not a JSON object")
    media_type = doc.get("mediaType") or (declared if declared in MANIFEST_TYPES else None)
    if media_type is None:
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if declared in MANIFEST_TYPES and doc.get("mediaType") and declared != doc["mediaType"]:
        raise CorruptData(f"manifest mediaType {doc['mediaType']} differs from Content-Type {declared}")
    return doc, media_type
