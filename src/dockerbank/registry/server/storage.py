"""The registry server's own storage directory (apart from any Dockerbank root).

Layout (one writer process; every file lands under a temporary name and is renamed into place)::

    blobs/sha256/<hex>                          content: layers, configs, manifests
    repositories/<name>/_layers/<hex>           blob linked into the repository (empty file)
    repositories/<name>/_manifests/<hex>        manifest of the repository (content: its media type)
    repositories/<name>/_tags/<tag>             tag (content: the manifest digest)
    repositories/<name>/_referrers/<subject-hex>/<hex>   referrer descriptor (JSON)
    uploads/<uuid>/data, uploads/<uuid>/name    upload sessions
    tmp/                                        scratch on the same filesystem (atomic renames)

Errors are ``RegistryError`` with the distribution spec's codes; the HTTP app renders them.

Crash safety: a blob reaches ``blobs/`` only after its digest was verified, a link only after its
blob, a manifest only after every blob it names, a tag only after its manifest. A process killed
between two steps leaves garbage (``tmp/``, ``uploads/``, unreferenced blobs) that ``gc`` removes,
never a served object that is half there. Each step is a named point of ``dockerbank.faults``
(``registry.upload.start`` ... ``registry.tag``, ``registry.gc.*``) so the crash tests kill there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from pathlib import Path

from dockerbank import faults
from dockerbank.errors import CorruptData
from dockerbank.host.permissions import private_dir
from dockerbank.registry import mediatypes as mt

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import BinaryIO

NAME_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
MAX_MANIFEST = 4 << 20  # distribution refuses larger manifests too


class RegistryError(Exception):
    """An error of the distribution spec: code, HTTP status, message and optional detail."""

    def __init__(self, code: str, status: int, message: str, detail=None, headers: dict | None = None):
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.detail = detail
        self.headers = headers or {}

    def body(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.detail is not None:
            error["detail"] = self.detail
        return {"errors": [error]}


def name_unknown(name: str) -> RegistryError:
    return RegistryError("NAME_UNKNOWN", 404, "repository name not known to registry", {"name": name})


def blob_unknown(digest: str) -> RegistryError:
    return RegistryError("BLOB_UNKNOWN", 404, "blob unknown to registry", {"digest": digest})


def upload_unknown(upload_id: str) -> RegistryError:
    return RegistryError("BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry", {"uuid": upload_id})


def check_name(name: str) -> str:
    if len(name) > 255 or not NAME_RE.match(name):
        raise RegistryError("NAME_INVALID", 400, "invalid repository name", {"name": name})
    return name


def check_digest(digest: str) -> str:
    if not DIGEST_RE.match(digest or ""):
        if digest and ":" in digest and not digest.startswith("sha256:"):
            raise RegistryError("UNSUPPORTED", 400, "unsupported digest algorithm", {"digest": digest})
        raise RegistryError("DIGEST_INVALID", 400, "provided digest is not a valid sha256 digest", {"digest": digest})
    return digest


def is_digest(reference: str) -> bool:
    return ":" in reference


@dataclass
class Upload:
    """An open upload session: its hash state is kept in memory while the server lives."""

    id: str
    name: str
    size: int = 0
    hasher: hashlib._Hash | None = field(default_factory=hashlib.sha256)


@dataclass
class GcReport:
    marked: int
    deleted: list[str]
    freed: int
    uploads_removed: int


class RegistryStorage:
    """Blobs, repositories, tags and upload sessions in one directory."""

    def __init__(self, root: Path, read_only: bool = False):
        self.root = Path(root)
        self.read_only = read_only
        self.blobs_dir = self.root / "blobs" / "sha256"
        self.repos_dir = self.root / "repositories"
        self.uploads_dir = self.root / "uploads"
        self.tmp_dir = self.root / "tmp"
        private_dir(self.root)  # pushed images may hold licensed code (REDCap): no other user reads them
        for path in (self.blobs_dir, self.repos_dir, self.uploads_dir, self.tmp_dir):
            path.mkdir(parents=True, exist_ok=True)
        self._uploads: dict[str, Upload] = {}

    # --- helpers ---------------------------------------------------------------------------

    def _writable(self) -> None:
        if self.read_only:
            raise RegistryError("UNSUPPORTED", 405, "the registry is in read-only mode")

    def _repo(self, name: str) -> Path:
        return self.repos_dir / check_name(name)

    def _atomic_write(self, path: Path, data: bytes, step: str) -> None:
        """Write ``path`` under a temporary name and rename it into place (``step``: the fault point)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="w-", dir=self.tmp_dir)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            faults.point(step)
            os.replace(tmp, path)
        except BaseException:
            _unlink(tmp)
            raise

    def repo_exists(self, name: str) -> bool:
        return self._repo(name).is_dir()

    # --- blobs -----------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.blobs_dir / check_digest(digest).split(":", 1)[1]

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    def blob_in_repo(self, name: str, digest: str) -> Path:
        """The path of a blob the repository may serve (layers, configs and its manifests)."""
        hex_ = check_digest(digest).split(":", 1)[1]
        repo = self._repo(name)
        path = self.blob_path(digest)
        linked = (repo / "_layers" / hex_).exists() or (repo / "_manifests" / hex_).exists()
        if not linked or not path.exists():
            raise blob_unknown(digest)
        return path

    def link_blob(self, name: str, digest: str) -> None:
        link = self._repo(name) / "_layers" / check_digest(digest).split(":", 1)[1]
        if not link.exists():
            self._atomic_write(link, b"", "registry.blob.link")

    def delete_blob(self, name: str, digest: str) -> None:
        """Unlink a blob from a repository; its bytes go at the next garbage collection."""
        self._writable()
        link = self._repo(name) / "_layers" / check_digest(digest).split(":", 1)[1]
        if not link.exists():
            raise blob_unknown(digest)
        link.unlink()

    def mount_blob(self, name: str, digest: str, source: str) -> bool:
        """Cross-repository mount: link ``digest`` from ``source`` into ``name`` if it is there."""
        self._writable()
        check_name(source)
        try:
            self.blob_in_repo(source, digest)
        except RegistryError:
            return False
        self.link_blob(name, digest)
        return True

    def put_blob_bytes(self, name: str, data: bytes, expected: str) -> str:
        """Store a whole blob (monolithic upload); refuse it if its digest differs."""
        self._writable()
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != check_digest(expected):
            raise RegistryError("DIGEST_INVALID", 400, "provided digest did not match uploaded content",
                                {"expected": expected, "actual": actual})
        if not self.has_blob(actual):
            self._atomic_write(self.blob_path(actual), data, "registry.blob")
        self.link_blob(name, actual)
        return actual

    # --- uploads ---------------------------------------------------------------------------

    def start_upload(self, name: str) -> Upload:
        self._writable()
        check_name(name)
        upload = Upload(uuidlib.uuid4().hex, name)
        folder = self.uploads_dir / upload.id
        folder.mkdir(parents=True)
        (folder / "data").touch()
        (folder / "name").write_text(name)
        faults.point("registry.upload.start")
        self._uploads[upload.id] = upload
        return upload

    def get_upload(self, name: str, upload_id: str) -> Upload:
        upload = self._uploads.get(upload_id)
        if upload is None:
            # a session from before a restart: rebuild its state from disk (hash recomputed at the end)
            folder = self.uploads_dir / upload_id
            if not re.fullmatch(r"[a-f0-9]{32}", upload_id) or not (folder / "name").exists() \
                    or not (folder / "data").exists():  # a session killed after its data moved into place
                raise upload_unknown(upload_id)
            upload = Upload(upload_id, (folder / "name").read_text(), (folder / "data").stat().st_size, None)
            self._uploads[upload_id] = upload
        if upload.name != name:
            raise upload_unknown(upload_id)
        return upload

    def upload_file(self, upload: Upload) -> Path:
        return self.uploads_dir / upload.id / "data"

    def open_upload(self, upload: Upload) -> BinaryIO:
        """Append handle of a session's data (the app writes chunks and calls ``uploaded``)."""
        self._writable()
        return open(self.upload_file(upload), "ab")

    def uploaded(self, upload: Upload, chunk: bytes) -> None:
        """Account for ``chunk`` having been appended to the session's data."""
        if upload.hasher is not None:
            upload.hasher.update(chunk)
        upload.size += len(chunk)
        faults.point("registry.upload.chunk")

    def finish_upload(self, upload: Upload, expected: str) -> str:
        """Verify the session's data against ``expected``, move it into the blob store, link it."""
        self._writable()
        check_digest(expected)
        data = self.upload_file(upload)
        if upload.hasher is None:
            hasher = hashlib.sha256()
            with open(data, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    hasher.update(chunk)
        else:
            hasher = upload.hasher
        actual = "sha256:" + hasher.hexdigest()
        if actual != expected:
            self.cancel_upload(upload)
            raise RegistryError("DIGEST_INVALID", 400, "provided digest did not match uploaded content",
                                {"expected": expected, "actual": actual})
        target = self.blob_path(actual)
        faults.point("registry.upload.commit")
        if target.exists():
            data.unlink()
        else:
            os.replace(data, target)
        faults.point("registry.upload.committed")
        self.cancel_upload(upload)
        self.link_blob(upload.name, actual)
        return actual

    def cancel_upload(self, upload: Upload) -> None:
        self._uploads.pop(upload.id, None)
        shutil.rmtree(self.uploads_dir / upload.id, ignore_errors=True)

    # --- manifests and tags ----------------------------------------------------------------

    def put_manifest(self, name: str, reference: str, body: bytes, content_type: str | None) -> tuple[str, str | None]:
        """Store a manifest under a tag or digest; return (digest, subject digest or None)."""
        self._writable()
        repo = self._repo(name)
        if len(body) > MAX_MANIFEST:
            raise RegistryError("SIZE_INVALID", 413, "manifest too large", {"size": len(body)})
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if is_digest(reference):
            if check_digest(reference) != digest:
                raise RegistryError("DIGEST_INVALID", 400, "manifest digest did not match its content",
                                    {"expected": reference, "actual": digest})
        elif not TAG_RE.match(reference):
            raise RegistryError("MANIFEST_INVALID", 400, "invalid tag", {"tag": reference})
        try:
            doc, media_type = mt.parse_manifest(body, content_type)
        except CorruptData as exc:
            raise RegistryError("MANIFEST_INVALID", 400, "manifest invalid", str(exc)) from exc
        if doc.get("schemaVersion") != 2:
            raise RegistryError("MANIFEST_INVALID", 400, "manifest invalid", "schemaVersion must be 2")
        self._check_references(repo, doc, media_type)
        hex_ = digest.split(":", 1)[1]
        if not self.has_blob(digest):
            self._atomic_write(self.blob_path(digest), body, "registry.manifest.blob")
        self._atomic_write(repo / "_manifests" / hex_, media_type.encode(), "registry.manifest")
        subject = doc.get("subject")
        subject_digest = None
        if isinstance(subject, dict) and DIGEST_RE.match(str(subject.get("digest", ""))):
            subject_digest = subject["digest"]
            descriptor = {"mediaType": media_type, "digest": digest, "size": len(body)}
            artifact_type = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType")
            if artifact_type:
                descriptor["artifactType"] = artifact_type
            if doc.get("annotations"):
                descriptor["annotations"] = doc["annotations"]
            self._atomic_write(repo / "_referrers" / subject_digest.split(":", 1)[1] / hex_,
                               json.dumps(descriptor).encode(), "registry.referrer")
        if not is_digest(reference):
            self._atomic_write(repo / "_tags" / reference, digest.encode(), "registry.tag")
        return digest, subject_digest

    def _check_references(self, repo: Path, doc: dict, media_type: str) -> None:
        if media_type in mt.INDEXES:
            for child in doc.get("manifests") or []:
                digest = _descriptor_digest(child)
                if not (repo / "_manifests" / digest.split(":", 1)[1]).exists():
                    raise RegistryError("MANIFEST_BLOB_UNKNOWN", 400, "manifest references a manifest unknown to the repository",
                                        {"digest": digest})
            return
        descriptors = ([doc["config"]] if isinstance(doc.get("config"), dict) else []) + list(doc.get("layers") or [])
        if media_type in mt.IMAGE_MANIFESTS and "config" not in doc:
            raise RegistryError("MANIFEST_INVALID", 400, "manifest invalid", "an image manifest needs a config")
        for descriptor in descriptors:
            digest = _descriptor_digest(descriptor)
            if descriptor.get("urls"):
                continue  # foreign / non-distributable layers live elsewhere
            if not self.has_blob(digest):
                raise RegistryError("MANIFEST_BLOB_UNKNOWN", 400, "manifest references a blob unknown to the registry",
                                    {"digest": digest})
        for descriptor in descriptors:
            if not descriptor.get("urls"):
                self.link_blob(repo.relative_to(self.repos_dir).as_posix(), descriptor["digest"])

    def resolve(self, name: str, reference: str) -> str:
        """The manifest digest a tag or digest names in the repository."""
        repo = self._repo(name)
        if not repo.is_dir():
            raise name_unknown(name)
        if is_digest(reference):
            check_digest(reference)
            if not (repo / "_manifests" / reference.split(":", 1)[1]).exists():
                raise RegistryError("MANIFEST_UNKNOWN", 404, "manifest unknown", {"digest": reference})
            return reference
        if not TAG_RE.match(reference):  # no such tag can exist: 404, as the conformance suite expects
            raise RegistryError("MANIFEST_UNKNOWN", 404, "manifest unknown", {"tag": reference})
        try:
            return (repo / "_tags" / reference).read_text().strip()
        except FileNotFoundError as exc:
            raise RegistryError("MANIFEST_UNKNOWN", 404, "manifest unknown", {"tag": reference}) from exc

    def get_manifest(self, name: str, reference: str) -> tuple[Path, str, str]:
        """(path of the manifest bytes, media type, digest)."""
        digest = self.resolve(name, reference)
        hex_ = digest.split(":", 1)[1]
        try:
            media_type = (self._repo(name) / "_manifests" / hex_).read_text()
        except FileNotFoundError as exc:
            raise RegistryError("MANIFEST_UNKNOWN", 404, "manifest unknown", {"digest": digest}) from exc
        path = self.blob_path(digest)
        if not path.exists():
            raise RegistryError("MANIFEST_UNKNOWN", 404, "manifest unknown", {"digest": digest})
        return path, media_type, digest

    def delete_manifest(self, name: str, reference: str) -> None:
        """Delete a tag, or a manifest by digest with every tag pointing at it."""
        self._writable()
        repo = self._repo(name)
        digest = self.resolve(name, reference)
        if not is_digest(reference):
            (repo / "_tags" / reference).unlink()
            return
        hex_ = digest.split(":", 1)[1]
        for tag in self.tags(name):
            if (repo / "_tags" / tag).read_text().strip() == digest:
                _unlink(repo / "_tags" / tag)
        (repo / "_manifests" / hex_).unlink()
        referrers = repo / "_referrers"
        if referrers.is_dir():
            for subject in referrers.iterdir():
                _unlink(subject / hex_)

    def tags(self, name: str) -> list[str]:
        repo = self._repo(name)
        if not repo.is_dir():
            raise name_unknown(name)
        folder = repo / "_tags"
        return sorted(os.listdir(folder)) if folder.is_dir() else []

    def repositories(self) -> list[str]:
        """Every repository that holds a manifest or a blob, sorted (the catalog)."""
        found = []
        for dirpath, dirnames, _files in os.walk(self.repos_dir):
            if "_manifests" in dirnames or "_layers" in dirnames:
                found.append(Path(dirpath).relative_to(self.repos_dir).as_posix())
            dirnames[:] = [d for d in dirnames if not d.startswith("_")]
        return sorted(found)

    def referrers(self, name: str, digest: str, artifact_type: str | None = None) -> list[dict]:
        """Descriptors of the manifests whose ``subject`` is ``digest``, optionally filtered."""
        check_digest(digest)
        repo = self._repo(name)
        folder = repo / "_referrers" / digest.split(":", 1)[1]
        found = []
        if folder.is_dir():
            for entry in sorted(folder.iterdir()):
                if not (repo / "_manifests" / entry.name).exists():
                    continue
                descriptor = json.loads(entry.read_bytes())
                if artifact_type and descriptor.get("artifactType") != artifact_type:
                    continue
                found.append(descriptor)
        return found

    # --- garbage collection ----------------------------------------------------------------

    def gc(self, dry_run: bool = False, upload_max_age: float = 24 * 3600) -> GcReport:
        """Delete blobs no manifest of any repository references (mark and sweep).

        Run it while no client pushes (stop the server or serve ``--read-only``): a blob
        uploaded but not yet referenced by its manifest would count as garbage. A run killed
        midway leaves only a consistent store (links to swept blobs are never served); the
        next run finishes its work. Stale uploads and temporary files older than
        ``upload_max_age`` go too (counted as ``uploads_removed``).
        """
        marked: set[str] = set()
        for name in self.repositories():
            folder = self._repo(name) / "_manifests"
            if not folder.is_dir():
                continue
            for hex_ in os.listdir(folder):
                digest = "sha256:" + hex_
                marked.add(digest)
                try:
                    doc, _ = mt.parse_manifest(self.blob_path(digest).read_bytes())
                except (OSError, CorruptData):
                    continue
                for descriptor in ([doc.get("config")] + list(doc.get("layers") or [])
                                   + list(doc.get("manifests") or [])):
                    if isinstance(descriptor, dict) and DIGEST_RE.match(str(descriptor.get("digest", ""))):
                        marked.add(descriptor["digest"])
        if not dry_run:
            faults.point("registry.gc.marked")
        deleted, freed = [], 0
        for hex_ in os.listdir(self.blobs_dir):
            digest = "sha256:" + hex_
            if digest in marked:
                continue
            path = self.blobs_dir / hex_
            freed += path.stat().st_size
            deleted.append(digest)
            if not dry_run:
                path.unlink()
                faults.point("registry.gc.swept")
        if not dry_run:
            # links to a blob that is gone: this run's and those a killed earlier run left (it
            # swept the blob, then died before its link); a link must not outlive its blob
            for name in self.repositories():
                layers = self._repo(name) / "_layers"
                if layers.is_dir():
                    for hex_ in os.listdir(layers):
                        if not (self.blobs_dir / hex_).exists():
                            _unlink(layers / hex_)
                            faults.point("registry.gc.unlinked")
        removed = 0
        now = time.time()
        for entry in os.listdir(self.uploads_dir):
            path = self.uploads_dir / entry
            if entry not in self._uploads and now - path.stat().st_mtime > upload_max_age:
                removed += 1
                if not dry_run:
                    shutil.rmtree(path, ignore_errors=True)
        for entry in os.listdir(self.tmp_dir):   # files of writes a killed server never renamed
            path = self.tmp_dir / entry
            if now - path.stat().st_mtime > upload_max_age:
                removed += 1
                if not dry_run:
                    _unlink(path)
        return GcReport(len(marked), deleted, freed, removed)


def _descriptor_digest(descriptor) -> str:
    if not isinstance(descriptor, dict) or not DIGEST_RE.match(str(descriptor.get("digest", ""))):
        raise RegistryError("MANIFEST_INVALID", 400, "manifest invalid", "a descriptor lacks a valid digest")
    return descriptor["digest"]


def _unlink(path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
