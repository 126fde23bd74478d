"""A backup repository in an OCI registry (``--repo oci://registry/name``).

Any registry that follows the distribution spec will do (Dockerbank's own, distribution 2.8),
with the TLS rules and stored credentials of ``pull``/``push`` (the engine's registry client).

- every chunk is a blob (its stored bytes: zstd, encrypted if the repository is);
- every other object is an OCI image manifest whose ``artifactType`` is Dockerbank's own,
  with the object's bytes as its first layer and the empty config (OCI 1.1 artifacts):
  a snapshot is tagged by its ID (``20261205T031500Z-a1b2c3``) and lists, after the manifest
  blob, a *chunk map* (chunk ID -> blob digest and size, since a blob's digest is that of its
  stored bytes, not the chunk's ID) and every chunk blob it uses, so the registry's garbage
  collection keeps them; the repository's config is tagged ``config``, key files ``key-<id>``.
  Registries refuse manifests over 4 MiB: past 15,000 chunk blobs a snapshot continues in
  manifests tagged ``<id>.c1``, ``<id>.c2``... (written first; the snapshot's own manifest commits).

Which chunks exist is learned once per session from the snapshots' chunk maps (plus what this
session uploaded); a blob uploaded by an interrupted run is found again by a HEAD of its digest,
so a repeated ``copy`` does not send it twice. A registry has no locks: do not ``prune`` an
``oci://`` repository while a backup writes to it.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterable, Sequence

from dockerbank.backup.storage import Backend
from dockerbank.errors import CorruptData, InvalidArgument, NotFound, NotSupported

ARTIFACT_SNAPSHOT = "application/vnd.dockerbank.backup.snapshot.v1+json"
ARTIFACT_CONFIG = "application/vnd.dockerbank.backup.config.v1+json"
ARTIFACT_KEY = "application/vnd.dockerbank.backup.key.v1+json"
MEDIA_OBJECT = "application/vnd.dockerbank.backup.object.v1"
MEDIA_CHUNK_MAP = "application/vnd.dockerbank.backup.chunkmap.v1+json"
MEDIA_CHUNK = "application/vnd.dockerbank.backup.chunk.v1"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_CONFIG = {"mediaType": EMPTY_MEDIA_TYPE, "size": 2,
                "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}
ARTIFACT_CHUNK_REFS = "application/vnd.dockerbank.backup.chunk-refs.v1+json"
MAX_CHUNK_REFS = 15000     # descriptors per manifest: registries refuse manifests over 4 MiB
SNAPSHOT_TAG = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]+$")
_NAME = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")


def parse_url(url: str) -> tuple[str, str]:
    """(registry host[:port], repository name) of ``oci://registry/name``."""
    rest = url[len("oci://"):] if url.startswith("oci://") else url
    host, _, name = rest.partition("/")
    name = name.strip("/")
    if not host or not name or not _NAME.match(name):
        raise InvalidArgument(f"invalid repository URL {url!r}: use oci://REGISTRY[:PORT]/NAME "
                              "(NAME in lowercase letters, digits, . _ - and /)")
    return host, name


def tag_of(name: str) -> str:
    kind, _, rest = name.partition("/")
    if name == "config":
        return "config"
    if kind == "keys":
        return f"key-{rest}"
    if kind == "snapshots":
        return rest
    raise InvalidArgument(f"no such object kind: {name}")


def object_manifest(artifact_type: str, blob: dict, extra: Sequence[dict] = ()) -> bytes:
    """An OCI 1.1 artifact manifest: empty config, the object's blob first, then ``extra``."""
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
                       "config": EMPTY_CONFIG, "layers": [blob, *extra]}, separators=(",", ":")).encode()


class OciBackend(Backend):
    """Objects of one repository in one registry, through a registry ``Transport``."""

    def __init__(self, transport, host: str, name: str):
        self.transport = transport
        self.host = host
        self.name = name
        self.url = f"oci://{host}/{name}"
        self._chunks: dict[str, tuple[str, int]] | None = None   # chunk ID -> (blob digest, size)
        self._lock = threading.Lock()
        self._authorized = False
        self._config_blob = False

    @classmethod
    def from_url(cls, url: str, registry) -> OciBackend:
        host, name = parse_url(url)
        return cls(registry.transport(host), host, name)

    # --- HTTP -----------------------------------------------------------------------------

    @property
    def scope(self) -> str:
        return f"repository:{self.name}:pull,push"

    def _request(self, method: str, path: str, **kwargs):
        if not self._authorized:
            self.transport.authorize(self.scope)
            self._authorized = True
        return self.transport.request(method, path, scope=self.scope, **kwargs)

    def _has_blob(self, digest: str) -> bool:
        with self._request("HEAD", f"/v2/{self.name}/blobs/{digest}", ok=(200, 404)) as response:
            response.read()
            return response.status == 200

    def _upload(self, data: bytes, media_type: str) -> dict:
        """Upload ``data`` as a blob unless the registry has it; its descriptor."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self._has_blob(digest):
            with self._request("POST", f"/v2/{self.name}/blobs/uploads/", ok=(202,)) as response:
                response.read()
                location = response.headers.get("Location")
            if not location:
                raise CorruptData(f"registry {self.host} gave no upload location")
            separator = "&" if "?" in location else "?"
            with self._request("PUT", f"{location}{separator}digest={digest}", body=data, ok=(201, 204),
                               headers={"Content-Type": "application/octet-stream",
                                        "Content-Length": str(len(data))}) as response:
                response.read()
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def _blob(self, digest: str) -> bytes:
        with self._request("GET", f"/v2/{self.name}/blobs/{digest}") as response:
            data = response.read()
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise CorruptData(f"{self.url}: blob {digest} arrived with other content")
        return data

    def _manifest(self, tag: str) -> tuple[dict, str]:
        """(manifest, digest) of a tag; NotFound if the registry has no such tag."""
        try:
            with self._request("GET", f"/v2/{self.name}/manifests/{tag}",
                               headers={"Accept": OCI_MANIFEST}) as response:
                body = response.read()
                digest = response.headers.get("Docker-Content-Digest") or ""
        except NotFound:
            raise NotFound(f"{tag} is missing from the repository {self.url}") from None
        try:
            return json.loads(body), digest or "sha256:" + hashlib.sha256(body).hexdigest()
        except ValueError as exc:
            raise CorruptData(f"{self.url}: manifest {tag} is not JSON") from exc

    def _tags(self) -> list[str]:
        tags: list[str] = []
        path = f"/v2/{self.name}/tags/list?n=1000"
        while path:
            try:
                with self._request("GET", path) as response:
                    body = json.loads(response.read() or b"{}")
                    link = response.headers.get("Link", "")
            except NotFound:
                return tags          # a repository nothing was pushed to yet
            tags += body.get("tags") or []
            match = re.match(r"<([^>]+)>", link)
            path = match.group(1) if match else ""
        return tags

    # --- the chunk index ------------------------------------------------------------------

    def _index(self) -> dict[str, tuple[str, int]]:
        with self._lock:
            if self._chunks is None:
                found: dict[str, tuple[str, int]] = {}
                for tag in self._tags():
                    if SNAPSHOT_TAG.match(tag):
                        manifest, _ = self._manifest(tag)
                        layers = manifest.get("layers") or []
                        if len(layers) > 1 and layers[1].get("mediaType") == MEDIA_CHUNK_MAP:
                            for cid, (digest, size) in json.loads(self._blob(layers[1]["digest"])).items():
                                found[cid] = (digest, int(size))
                self._chunks = found
            return self._chunks

    # --- the Backend interface ------------------------------------------------------------

    def put(self, name: str, data: bytes, *, refs: Iterable[str] = (), durable: bool = True) -> None:
        kind, _, rest = name.partition("/")
        if kind == "chunks":
            descriptor = self._upload(data, MEDIA_CHUNK)
            index = self._index()
            with self._lock:
                index[rest] = (descriptor["digest"], descriptor["size"])
            return
        blob = self._upload(data, MEDIA_OBJECT)
        extra: list[dict] = []
        artifact = ARTIFACT_CONFIG if name == "config" else ARTIFACT_KEY
        if kind == "snapshots":
            artifact = ARTIFACT_SNAPSHOT
            index = self._index()
            chunk_map = {}
            for ref in refs:
                cid = ref.partition("/")[2]
                if cid not in index:
                    raise CorruptData(f"chunk {cid[:12]} is not in {self.url}; the snapshot was not written")
                chunk_map[cid] = list(index[cid])
            extra.append(self._upload(json.dumps(chunk_map, separators=(",", ":")).encode(), MEDIA_CHUNK_MAP))
            seen = set()
            chunk_refs = []
            for digest, size in chunk_map.values():
                if digest not in seen:
                    seen.add(digest)
                    chunk_refs.append({"mediaType": MEDIA_CHUNK, "digest": digest, "size": size})
            # more chunks than one manifest may list: the rest in continuation manifests
            # (tagged <id>.c1, .c2 ...), written before the snapshot's own manifest commits it
            extra += chunk_refs[:MAX_CHUNK_REFS]
            for number, start in enumerate(range(MAX_CHUNK_REFS, len(chunk_refs), MAX_CHUNK_REFS), 1):
                self._put_manifest(f"{rest}.c{number}", object_manifest(
                    ARTIFACT_CHUNK_REFS, chunk_refs[start], chunk_refs[start + 1:start + MAX_CHUNK_REFS]))
        self._put_manifest(tag_of(name), object_manifest(artifact, blob, extra))

    def _put_manifest(self, tag: str, manifest: bytes) -> None:
        if not self._config_blob:
            self._upload(b"{}", EMPTY_MEDIA_TYPE)
            self._config_blob = True
        with self._request("PUT", f"/v2/{self.name}/manifests/{tag}", body=manifest, ok=(200, 201),
                           headers={"Content-Type": OCI_MANIFEST}) as response:
            response.read()

    def get(self, name: str) -> bytes:
        kind, _, rest = name.partition("/")
        if kind == "chunks":
            found = self._index().get(rest)
            if found is None:
                raise NotFound(f"{name} is missing from the repository {self.url}")
            return self._blob(found[0])
        manifest, _ = self._manifest(tag_of(name))
        layers = manifest.get("layers") or []
        if not layers or layers[0].get("mediaType") != MEDIA_OBJECT:
            raise CorruptData(f"{self.url}: tag {tag_of(name)} is not a Dockerbank backup object")
        return self._blob(layers[0]["digest"])

    def exists(self, name: str) -> bool:
        kind, _, rest = name.partition("/")
        if kind == "chunks":
            return rest in self._index()
        with self._request("HEAD", f"/v2/{self.name}/manifests/{tag_of(name)}", ok=(200, 404),
                           headers={"Accept": OCI_MANIFEST}) as response:
            response.read()
            return response.status == 200

    def size(self, name: str) -> int:
        kind, _, rest = name.partition("/")
        if kind == "chunks" and rest in self._index():
            return self._index()[rest][1]
        return len(self.get(name))

    def list(self, prefix: str) -> list[str]:
        kind = prefix.rstrip("/")
        if kind == "chunks":
            return [f"chunks/{cid}" for cid in self._index()]
        tags = self._tags()
        if kind == "snapshots":
            return [f"snapshots/{t}" for t in tags if SNAPSHOT_TAG.match(t)]
        if kind == "keys":
            return [f"keys/{t[4:]}" for t in tags if t.startswith("key-")]
        return []

    def delete(self, name: str) -> None:
        kind, _, rest = name.partition("/")
        if kind == "chunks":
            found = self._index().pop(rest, None)
            if found is not None:   # a registry without blob deletes collects it in its own GC
                with self._request("DELETE", f"/v2/{self.name}/blobs/{found[0]}", ok=(202, 404, 405)) as response:
                    response.read()
            return
        if not self._delete_manifest(tag_of(name)):
            return
        if kind == "snapshots":
            number = 1
            while self._delete_manifest(f"{rest}.c{number}"):
                number += 1
            with self._lock:
                self._chunks = None     # relearned from the remaining snapshots

    def _delete_manifest(self, tag: str) -> bool:
        """Delete the manifest a tag names; False if there is no such tag."""
        try:
            _, digest = self._manifest(tag)
        except NotFound:
            return False
        with self._request("DELETE", f"/v2/{self.name}/manifests/{digest}", ok=(202, 404, 405)) as response:
            response.read()
            if response.status == 405:
                raise NotSupported(f"registry {self.host} does not allow deleting manifests "
                                   "(distribution: REGISTRY_STORAGE_DELETE_ENABLED=true)")
        return True

    def close(self) -> None:
        self.transport.close()


__all__ = ["OciBackend", "parse_url"]
