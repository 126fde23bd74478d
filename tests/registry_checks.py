"""Consistency checks of a registry server's storage, read as plain files (shared by the fault
injection tests, which SIGKILL the server, and the tests of its clean stop on SIGTERM)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def check_storage(storage: Path, what: str, after_gc: bool) -> None:
    """The storage of a registry server read as files (not through the code it checks): every blob
    matches its digest, no manifest names a missing blob, every tag names a manifest
    of its repository; after a completed gc also: no link to a missing blob, no unreferenced blob."""
    blobs_dir = storage / "blobs" / "sha256"
    blobs = set(os.listdir(blobs_dir))
    for hex_ in blobs:
        assert sha256_file(blobs_dir / hex_) == hex_, f"{what}: blob {hex_[:12]} does not match its digest"
    referenced: set[str] = set()
    for dirpath, dirnames, _files in os.walk(storage / "repositories"):
        repo = Path(dirpath)
        dirnames[:] = [d for d in dirnames if not d.startswith("_")]
        name = repo.relative_to(storage / "repositories").as_posix()
        manifests = set(os.listdir(repo / "_manifests")) if (repo / "_manifests").is_dir() else set()
        links = set(os.listdir(repo / "_layers")) if (repo / "_layers").is_dir() else set()
        for hex_ in manifests:
            assert hex_ in blobs, f"{what}: manifest {hex_[:12]} of {name} has no blob"
            referenced.add(hex_)
            doc = json.loads((blobs_dir / hex_).read_bytes())
            for descriptor in [doc.get("config"), *(doc.get("layers") or []), *(doc.get("manifests") or [])]:
                if not descriptor:
                    continue
                child = descriptor["digest"].split(":", 1)[1]
                referenced.add(child)
                assert child in blobs, f"{what}: manifest {hex_[:12]} of {name} names missing blob {child[:12]}"
                if descriptor is doc.get("config") or descriptor in (doc.get("layers") or []):
                    assert child in links, f"{what}: blob {child[:12]} of {name}'s manifest is not linked there"
        tags = repo / "_tags"
        for tag in (os.listdir(tags) if tags.is_dir() else []):
            digest = (tags / tag).read_text().strip()
            assert digest.split(":", 1)[1] in manifests, f"{what}: tag {name}:{tag} names a missing manifest"
        if after_gc:
            dangling = links - blobs
            assert not dangling, f"{what}: {name} links {len(dangling)} blobs that are gone"
    if after_gc:
        garbage = blobs - referenced
        assert not garbage, f"{what}: registry gc left {len(garbage)} unreferenced blobs"
