"""A self-describing, deduplicated backup repository in one directory.

Layout (``--repo DIR``)::

    repo.json                     format version, chunker parameters, compression
    chunks/<2 hex>/<sha256 hex>   one zstd-compressed chunk, named by the sha256 of its plain bytes
    snapshots/<id>.json           one manifest per snapshot (what, when, engine version, parts)
    lock                          flock: writers share it, rm/prune (chunk GC) take it exclusively
    tmp/                          chunks and manifests being written (renamed into place)

A part (a volume's tar, a container's top layer, an image archive, a dump) is cut into
content-defined chunks (FastCDC 2020, ~1 MiB average), so an unchanged or slightly changed
part of a second backup stores only the chunks it does not share with earlier ones. A
manifest is written (temp + rename) only after every chunk it names is on disk and synced:
a crash leaves at most unreferenced chunks, which the next ``prune`` collects.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dockerbank.backup.crypto import AeadCodec, MasterKey, PlainCodec, WrongPassphrase, unwrap, wrap
from dockerbank.backup.storage import Backend, DirBackend
from dockerbank.errors import Conflict, CorruptData, InvalidArgument, NotFound

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import BinaryIO

    from dockerbank.streams import ReadsInto

FORMAT_VERSION = 1
AVG_CHUNK = 1 << 20
MIN_CHUNK = 256 << 10
MAX_CHUNK = 4 << 20
ZSTD_LEVEL = 3
_INFLIGHT = 16            # chunks queued for hashing/compression at once (bounds memory)


def new_chunker(avg: int = AVG_CHUNK, min_size: int = MIN_CHUNK, max_size: int = MAX_CHUNK):
    """The content-defined chunker (FastCDC 2020, gear hash; Cython when available)."""
    from pyfastcdc import FastCDC

    return FastCDC(avg, min_size=min_size, max_size=max_size, normalized_chunking=1)


def cut_points(data: bytes, avg: int = AVG_CHUNK, min_size: int = MIN_CHUNK, max_size: int = MAX_CHUNK) -> list[int]:
    """Lengths of the chunks ``data`` is cut into (pure, for tests and tools)."""
    return [c.length for c in new_chunker(avg, min_size, max_size).cut_buf(data)]


class _FullReader:
    """``readinto`` that fills the buffer unless at EOF (a pipe returns short reads)."""

    def __init__(self, raw: ReadsInto, on_read: Callable[[int], None] | None = None):
        self.raw = raw
        self.on_read = on_read

    def readinto(self, buf) -> int:
        view = memoryview(buf).cast("B")
        total = 0
        while total < len(view):
            n = self.raw.readinto(view[total:])
            if not n:
                break
            total += n
        if self.on_read and total:
            self.on_read(total)
        return total


@dataclass
class PartStats:
    size: int = 0            # plain bytes of the part
    chunks: int = 0
    new_chunks: int = 0
    new_bytes: int = 0       # plain bytes of chunks not in the repository before
    stored_bytes: int = 0    # compressed bytes written for them
    dedup_bytes: int = 0     # plain bytes found already stored


@dataclass
class Part:
    """One item of a snapshot: a named stream of bytes stored as chunks."""

    kind: str                # volume | container | image | dump | state | network
    name: str
    format: str              # tar | layer-tar | docker-archive | sql | sqlite | json
    size: int
    sha256: str
    chunks: list[list]       # [[sha256 hex, plain length], ...]
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "format": self.format, "size": self.size,
                "sha256": self.sha256, "chunks": self.chunks, "meta": self.meta}

    @classmethod
    def from_dict(cls, data: dict) -> Part:
        return cls(data["kind"], data["name"], data["format"], int(data["size"]), data["sha256"],
                   [list(c) for c in data["chunks"]], dict(data.get("meta") or {}))


@dataclass
class Snapshot:
    """A manifest: what was saved, when, by which engine, with the digest of every part."""

    id: str
    created: str
    engine_version: str
    hostname: str
    source_root: str
    tags: list[str]
    consistency: str
    parts: list[Part]
    warnings: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"version": FORMAT_VERSION, "id": self.id, "created": self.created,
                "engine_version": self.engine_version, "hostname": self.hostname, "source_root": self.source_root,
                "tags": self.tags, "consistency": self.consistency, "parts": [p.to_dict() for p in self.parts],
                "warnings": self.warnings, "stats": self.stats}

    @classmethod
    def from_dict(cls, data: dict) -> Snapshot:
        if data.get("version") != FORMAT_VERSION:
            raise CorruptData(f"snapshot {data.get('id')}: unknown manifest version {data.get('version')}")
        return cls(data["id"], data["created"], data.get("engine_version", ""), data.get("hostname", ""),
                   data.get("source_root", ""), list(data.get("tags") or []), data.get("consistency", ""),
                   [Part.from_dict(p) for p in data["parts"]], list(data.get("warnings") or []),
                   dict(data.get("stats") or {}))

    @property
    def size(self) -> int:
        return sum(p.size for p in self.parts)

    def created_at(self) -> datetime:
        # microseconds since two snapshots may come within one second; older manifests have none
        fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if "." in self.created else "%Y-%m-%dT%H:%M:%SZ"
        return datetime.strptime(self.created, fmt).replace(tzinfo=UTC)


def now_utc() -> datetime:
    return datetime.now(UTC)


class Repository:
    """A backup repository on a storage backend (a directory when given a path).

    ``passphrase`` is asked (called) only if the repository turns out to be encrypted.
    """

    def __init__(self, target: Backend | Path | str, *, passphrase: Callable[[], bytes] | None = None):
        self.backend = target if isinstance(target, Backend) else DirBackend(Path(target))
        self._passphrase = passphrase
        self._config: dict | None = None
        self._codec: PlainCodec | AeadCodec | None = None
        self._snapshot_cache: dict[str, Snapshot] = {}

    # --- layout and parameters ------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The directory of a local repository (remote ones have none)."""
        if self.backend.local_path is None:
            raise InvalidArgument(f"{self.url} is not a local directory")
        return self.backend.local_path

    @property
    def url(self) -> str:
        return self.backend.url

    @property
    def chunks_dir(self) -> Path:
        return self.path / "chunks"

    @property
    def snapshots_dir(self) -> Path:
        return self.path / "snapshots"

    def chunk_path(self, digest: str) -> Path:
        """The file of a chunk in a local repository (tests and tools)."""
        return self.backend.file(f"chunks/{digest}")  # type: ignore[attr-defined]

    def exists(self) -> bool:
        return self._config is not None or self.backend.exists("config")

    @property
    def config(self) -> dict:
        if self._config is None:
            try:
                raw = self.backend.get("config")
            except NotFound:
                raise NotFound(f"no backup repository at {self.url}") from None
            try:
                self._config = json.loads(raw)
            except ValueError as exc:
                raise CorruptData(f"{self.url}: unreadable repository config: {exc}") from exc
        return self._config

    @property
    def encrypted(self) -> bool:
        return bool(self.config.get("encryption"))

    @property
    def codec(self) -> PlainCodec | AeadCodec:
        """How chunks and manifests are named and sealed (unlocks an encrypted repository once, even
        when restore's read-ahead threads ask at the same moment)."""
        if self._codec is not None:
            return self._codec
        with _CODEC_LOCK:
            return self._unlocked_codec()

    def _unlocked_codec(self) -> PlainCodec | AeadCodec:
        if self._codec is None:
            if not self.encrypted:
                self._codec = PlainCodec()
            else:
                if self._passphrase is None:
                    raise InvalidArgument(f"the backup repository {self.url} is encrypted: give --password-file, "
                                          "DOCKERBANK_BACKUP_PASSWORD or a passphrase on a terminal")
                self._codec = self.unlock(self._passphrase())
        return self._codec

    @staticmethod
    def _new_config(encrypted: bool) -> dict:
        return {"format": "dockerbank-backup", "version": FORMAT_VERSION, "id": secrets.token_hex(16),
                "chunker": {"algorithm": "fastcdc2020", "avg": AVG_CHUNK, "min": MIN_CHUNK, "max": MAX_CHUNK},
                "compression": "zstd", "hash": "hmac-sha256" if encrypted else "sha256",
                "encryption": {"aead": "aes-256-gcm", "kdf": "key files (keys/)"} if encrypted else None}

    def init(self) -> None:
        """Create an unencrypted repository if there is none (idempotent)."""
        if self.exists():
            return
        config = self._new_config(False)
        self.backend.put("config", json.dumps(config, indent=2).encode())
        self._config = config

    def create(self, *, encrypt: bool = False, passphrase: bytes | None = None) -> dict:
        """``backup init``: a new repository (refused if one exists); encrypted with a first key."""
        if self.exists():
            raise Conflict(f"a backup repository already exists at {self.url}")
        config = self._new_config(encrypt)
        if encrypt:
            if not passphrase:
                raise InvalidArgument("an encrypted repository needs a non-empty passphrase")
            master = MasterKey.generate()
            self.backend.put(f"keys/{secrets.token_hex(8)}", json.dumps(wrap(master, passphrase), indent=1).encode())
            self._codec = AeadCodec(master)
        self.backend.put("config", json.dumps(config, indent=2).encode())
        self._config = config
        return config

    def adopt(self, source: Repository) -> None:
        """Create this repository with ``source``'s parameters and key files (``copy`` to a new
        target): the same passphrases open it and chunks move without re-encryption."""
        if self.exists():
            raise Conflict(f"a backup repository already exists at {self.url}")
        for name in source.backend.list("keys/"):
            self.backend.put(name, source.backend.get(name))
        config = dict(source.config)
        self.backend.put("config", json.dumps(config, indent=2).encode())
        self._config = config
        self._codec = source.codec

    # --- keys -----------------------------------------------------------------------------

    def _keyfiles(self) -> dict[str, dict]:
        found = {}
        for name in sorted(self.backend.list("keys/")):
            try:
                found[name.split("/", 1)[1]] = json.loads(self.backend.get(name))
            except ValueError as exc:
                raise CorruptData(f"{self.url}: unreadable key file {name}: {exc}") from exc
        return found

    def unlock(self, passphrase: bytes) -> AeadCodec:
        """The codec of the master key that ``passphrase`` opens (WrongPassphrase if none)."""
        keyfiles = self._keyfiles()
        if not keyfiles:
            raise CorruptData(f"the encrypted repository {self.url} has no key files")
        for key_id, keyfile in keyfiles.items():
            master = unwrap(keyfile, passphrase)
            if master is not None:
                return AeadCodec(master, key_id)
        raise WrongPassphrase(f"wrong passphrase for the backup repository {self.url}")

    def keys(self) -> list[dict]:
        """Key files: id, created, hostname, username, KDF, and whether it opened this session."""
        codec = self.codec
        current = getattr(codec, "key_id", "")
        return [{"id": key_id, "current": key_id == current, "created": kf.get("created", ""),
                 "hostname": kf.get("hostname", ""), "username": kf.get("username", ""),
                 "kdf": kf.get("kdf", {}).get("name", "")} for key_id, kf in self._keyfiles().items()]

    def add_key(self, passphrase: bytes) -> str:
        """Wrap the master key under one more passphrase; the new key file's ID."""
        codec = self.codec
        if not isinstance(codec, AeadCodec):
            raise InvalidArgument(f"the backup repository {self.url} is not encrypted")
        if not passphrase:
            raise InvalidArgument("the new passphrase is empty")
        key_id = secrets.token_hex(8)
        self.backend.put(f"keys/{key_id}", json.dumps(wrap(codec.master, passphrase), indent=1).encode())
        return key_id

    def remove_key(self, ref: str) -> str:
        """Delete a key file (by ID or unique prefix); never the one that opened the repository."""
        codec = self.codec
        if not isinstance(codec, AeadCodec):
            raise InvalidArgument(f"the backup repository {self.url} is not encrypted")
        matches = [k for k in self._keyfiles() if k.startswith(ref)]
        if not matches:
            raise NotFound(f"no key {ref} in {self.url}")
        if len(matches) > 1:
            raise InvalidArgument(f"key prefix {ref!r} is ambiguous ({len(matches)} matches)")
        if matches[0] == codec.key_id:
            raise Conflict(f"key {matches[0]} opened the repository; remove it with another passphrase")
        self.backend.delete(f"keys/{matches[0]}")
        return matches[0]

    @contextmanager
    def lock(self, exclusive: bool) -> Iterator[None]:
        """Writers of snapshots share the lock; chunk GC (rm, prune) holds it alone."""
        with self.backend.lock(exclusive):
            yield

    # --- writing parts --------------------------------------------------------------------

    def has_chunk(self, digest: str) -> bool:
        return self.backend.exists(f"chunks/{digest}")

    def _store_chunk(self, data: bytes, cctx_local: threading.local) -> tuple[str, int, bool, int]:
        codec = self.codec
        digest = codec.chunk_id(data)
        if self.has_chunk(digest):
            return digest, len(data), False, 0
        cctx = getattr(cctx_local, "cctx", None)
        if cctx is None:
            import zstandard

            cctx = cctx_local.cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        stored = codec.seal(cctx.compress(data), f"chunk {digest}")
        self.backend.put(f"chunks/{digest}", stored, durable=False)  # one sync before the manifest
        return digest, len(data), True, len(stored)

    def put_raw_chunk(self, digest: str, stored: bytes) -> None:
        """Store a chunk as another repository with the same key stored it (``copy``)."""
        self.backend.put(f"chunks/{digest}", stored, durable=False)

    def get_raw_chunk(self, digest: str) -> bytes:
        try:
            return self.backend.get(f"chunks/{digest}")
        except NotFound as exc:
            raise CorruptData(f"chunk {digest} is missing from the repository") from exc

    def write_part(self, kind: str, name: str, fmt: str, stream: ReadsInto, *, meta: dict | None = None,
                   progress: Callable[[int], None] | None = None, workers: int = 0) -> tuple[Part, PartStats]:
        """Chunk, hash, compress and store everything readable from ``stream`` as one part."""
        self.init()
        self.codec  # noqa: B018 - unlock before the worker threads need it
        chunker = new_chunker()
        whole = hashlib.sha256()
        stats = PartStats()
        local = threading.local()
        pending: deque[tuple[Future, Future]] = deque()
        chunks: list[list] = []

        def collect(futures: tuple[Future, Future]) -> None:
            futures[0].result()
            digest, length, new, packed = futures[1].result()
            chunks.append([digest, length])
            stats.chunks += 1
            if new:
                stats.new_chunks += 1
                stats.new_bytes += length
                stats.stored_bytes += packed
            else:
                stats.dedup_bytes += length

        # A pipeline: this thread reads and cuts; the part's running sha256 is fed in order by
        # one thread, each chunk is hashed, compressed, sealed and written by a pool (hashlib,
        # zstd and AES-GCM release the GIL, so they use every core while the next chunk is read).
        with ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 2)) as pool, \
                ThreadPoolExecutor(max_workers=1) as hasher:
            for chunk in chunker.cut_stream(_FullReader(stream, progress)):
                data = bytes(chunk.data)   # the chunker reuses its buffer
                stats.size += len(data)
                pending.append((hasher.submit(whole.update, data), pool.submit(self._store_chunk, data, local)))
                while len(pending) >= _INFLIGHT:
                    collect(pending.popleft())
            while pending:
                collect(pending.popleft())
        part = Part(kind, name, fmt, stats.size, whole.hexdigest(), chunks, dict(meta or {}))
        return part, stats

    def write_part_from_producer(self, kind: str, name: str, fmt: str, produce: Callable[[BinaryIO], object], *,
                                 meta: dict | None = None, progress: Callable[[int], None] | None = None
                                 ) -> tuple[Part, PartStats]:
        """Like ``write_part`` for a writer function (``pack_dir``): it runs in a thread into a pipe."""
        rfd, wfd = os.pipe()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                with open(wfd, "wb", buffering=1 << 20) as out:
                    produce(out)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                failure.append(exc)

        thread = threading.Thread(target=run, name=f"backup-{kind}-{name}", daemon=True)
        thread.start()
        try:
            with open(rfd, "rb", buffering=0) as inp:
                part, stats = self.write_part(kind, name, fmt, inp, meta=meta, progress=progress)
        finally:
            thread.join()
        if failure:
            raise failure[0]
        return part, stats

    def commit(self, snapshot: Snapshot) -> None:
        """Write the manifest atomically, after every chunk it names is durable."""
        names = []
        for part in snapshot.parts:
            for digest, _length in part.chunks:
                if not self.has_chunk(digest):
                    raise CorruptData(f"chunk {digest[:12]} of part {part.kind} {part.name} vanished before commit")
                names.append(f"chunks/{digest}")
        self.backend.sync()
        data = self.codec.seal(json.dumps(snapshot.to_dict(), indent=1).encode(), f"snapshot {snapshot.id}")
        self.backend.put(f"snapshots/{snapshot.id}", data, refs=list(dict.fromkeys(names)))

    @staticmethod
    def new_id(when: datetime) -> str:
        return when.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)

    # --- reading --------------------------------------------------------------------------

    def load_snapshot(self, sid: str) -> Snapshot:
        try:
            raw = self.codec.open(self.backend.get(f"snapshots/{sid}"), f"snapshot {sid}")
            return Snapshot.from_dict(json.loads(raw))
        except (ValueError, KeyError) as exc:
            raise CorruptData(f"unreadable manifest {sid}: {exc}") from exc

    def snapshots(self) -> list[Snapshot]:
        """All snapshots, oldest first."""
        if not self.exists():
            return []
        ids = [name.split("/", 1)[1] for name in self.backend.list("snapshots/")]
        # manifests do not change once written: each is fetched (and decrypted) once per session
        cache = self._snapshot_cache
        result = [cache[sid] if sid in cache else cache.setdefault(sid, self.load_snapshot(sid)) for sid in ids]
        result.sort(key=lambda s: (s.created, s.id))
        return result

    def get(self, ref: str) -> Snapshot:
        """A snapshot by ID, unique ID prefix, ``latest``, or tag (the newest with it)."""
        self.config  # noqa: B018 - NotFound for a missing repository
        snaps = self.snapshots()
        if ref == "latest":
            if not snaps:
                raise NotFound(f"no snapshots in {self.url}")
            return snaps[-1]
        exact = [s for s in snaps if s.id == ref]
        if exact:
            return exact[0]
        matches = [s for s in snaps if s.id.startswith(ref)]
        if len(matches) > 1:
            raise InvalidArgument(f"snapshot prefix {ref!r} is ambiguous ({len(matches)} matches)")
        if matches:
            return matches[0]
        tagged = [s for s in snaps if ref in s.tags]
        if tagged:
            return tagged[-1]
        raise NotFound(f"No such backup: {ref}")

    def unchanged_part(self, kind: str, name: str, signature: str) -> Part | None:
        """The newest stored part of ``kind``/``name`` taken from a tree with this signature,
        if all its chunks are still there (so a second backup of an unchanged tree reads nothing)."""
        for snap in reversed(self.snapshots()):
            for part in snap.parts:
                if part.kind == kind and part.name == name and part.meta.get("tree_signature") == signature:
                    if all(self.has_chunk(d) for d, _ in part.chunks):
                        return part
                    return None
        return None

    def read_chunk(self, digest: str) -> bytes:
        """The plain bytes of a chunk, authenticated and verified against its name."""
        import zstandard

        codec = self.codec
        packed = codec.open(self.get_raw_chunk(digest), f"chunk {digest}")
        try:
            data = zstandard.ZstdDecompressor().decompress(packed)
        except zstandard.ZstdError as exc:
            raise CorruptData(f"chunk {digest} is corrupt: {exc}") from exc
        if codec.chunk_id(data) != digest:
            raise CorruptData(f"chunk {digest} is corrupt: its content no longer matches its {codec.hash_name}")
        return data

    def open_part(self, part: Part) -> PartReader:
        return PartReader(self, part)

    def verify(self, snapshot: Snapshot, progress: Callable[[int], None] | None = None) -> list[str]:
        """Re-hash every chunk and every part; a list of problems (empty when all is well)."""
        problems = []
        for part in snapshot.parts:
            whole = hashlib.sha256()
            size = 0
            broken = False
            for digest, length in part.chunks:
                try:
                    data = self.read_chunk(digest)
                except CorruptData as exc:
                    problems.append(f"{part.kind} {part.name}: {exc}")
                    broken = True
                    break
                if len(data) != length:
                    problems.append(f"{part.kind} {part.name}: chunk {digest[:12]} has {len(data)} bytes, "
                                    f"manifest says {length}")
                whole.update(data)
                size += len(data)
                if progress:
                    progress(len(data))
            if not broken and (whole.hexdigest() != part.sha256 or size != part.size):
                problems.append(f"{part.kind} {part.name}: sha256 of the part does not match the manifest")
        return problems

    # --- removing -------------------------------------------------------------------------

    def remove(self, snapshot_ids: list[str]) -> None:
        for sid in snapshot_ids:
            self.backend.delete(f"snapshots/{sid}")
            self._snapshot_cache.pop(sid, None)

    def gc(self) -> tuple[int, int]:
        """Delete chunks no snapshot names (caller holds the exclusive lock); (chunks, bytes) freed."""
        used = {f"chunks/{digest}" for snap in self.snapshots() for part in snap.parts for digest, _ in part.chunks}
        count = freed = 0
        for name in self.backend.list("chunks/"):
            if name not in used:
                freed += self.backend.size(name)
                self.backend.delete(name)
                count += 1
        self.backend.cleanup()
        return count, freed

    def stored_bytes(self) -> int:
        return sum(self.backend.size(name) for name in self.backend.list("chunks/"))

    def close(self) -> None:
        self.backend.close()


_READ_POOL: ThreadPoolExecutor | None = None
_READ_POOL_LOCK = threading.Lock()
_CODEC_LOCK = threading.Lock()


def _read_pool() -> ThreadPoolExecutor:
    """Threads shared by every PartReader of the process (restore reads one part at a time)."""
    global _READ_POOL
    with _READ_POOL_LOCK:
        if _READ_POOL is None:
            _READ_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="backup-read")
        return _READ_POOL


class PartReader:
    """A part's bytes as a stream (``read``), each chunk verified, the whole checked at the end."""

    AHEAD = 8      # chunks fetched, decrypted and decompressed ahead of the reader (<= 32 MiB)

    def __init__(self, repo: Repository, part: Part):
        self.repo = repo
        self.part = part
        self.index = 0
        self.buffer = memoryview(b"")
        self.hash = hashlib.sha256()
        self.done = False
        self.ahead: deque[Future] = deque()
        self.requested = 0

    def _fill(self) -> bool:
        if self.index >= len(self.part.chunks):
            if not self.done:
                self.done = True
                if self.hash.hexdigest() != self.part.sha256:
                    raise CorruptData(f"{self.part.kind} {self.part.name}: sha256 does not match the manifest")
            return False
        # read-ahead: a remote repository answers one chunk per round trip, and decryption and
        # zstd release the GIL, so a few chunks in flight keep the restore fed
        pool = _read_pool()
        while self.requested < len(self.part.chunks) and len(self.ahead) < self.AHEAD:
            self.ahead.append(pool.submit(self.repo.read_chunk, self.part.chunks[self.requested][0]))
            self.requested += 1
        self.index += 1
        data = self.ahead.popleft().result()
        self.hash.update(data)
        self.buffer = memoryview(data)
        return True

    def read(self, size: int = -1) -> bytes:
        out = []
        want = size if size is not None and size >= 0 else None
        while want is None or want > 0:
            if not self.buffer and not self._fill():
                break
            take = len(self.buffer) if want is None else min(want, len(self.buffer))
            out.append(bytes(self.buffer[:take]))
            self.buffer = self.buffer[take:]
            if want is not None:
                want -= take
        return b"".join(out)

    def readinto(self, buf) -> int:
        data = self.read(len(buf))
        memoryview(buf).cast("B")[:len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True


def select_prune(snapshots: list[Snapshot], keep_last: int = 0, keep_daily: int = 0,
                 keep_weekly: int = 0) -> tuple[list[Snapshot], list[Snapshot]]:
    """(keep, remove) by restic's rules: the newest ``keep_last``; the newest of each of the last
    ``keep_daily`` days and ``keep_weekly`` ISO weeks that have snapshots. Pure."""
    if keep_last < 0 or keep_daily < 0 or keep_weekly < 0:
        raise InvalidArgument("prune: --keep-* values must not be negative")
    if not (keep_last or keep_daily or keep_weekly):
        raise InvalidArgument("prune needs at least one of --keep-last, --keep-daily, --keep-weekly "
                              "(refusing to remove every snapshot)")
    newest_first = sorted(snapshots, key=lambda s: (s.created, s.id), reverse=True)
    keep_ids = {s.id for s in newest_first[:keep_last]}
    for count, bucket in ((keep_daily, lambda d: d.strftime("%Y-%m-%d")),
                          (keep_weekly, lambda d: f"{d.isocalendar()[0]:04d}-W{d.isocalendar()[1]:02d}")):
        seen: set[str] = set()
        for snap in newest_first:
            if len(seen) >= count:
                break
            key = bucket(snap.created_at())
            if key not in seen:
                seen.add(key)
                keep_ids.add(snap.id)
    keep = [s for s in snapshots if s.id in keep_ids]
    remove = [s for s in snapshots if s.id not in keep_ids]
    return keep, remove


def open_repository(engine, url: str | Path | None, passphrase: Callable[[], bytes] | None = None) -> Repository:
    """The repository ``--repo`` names (default ``<root>/backups``), remote ones through the
    engine's registry client; ``passphrase`` is called only for an encrypted repository."""
    from dockerbank.backup.storage import open_backend

    target = url if url else engine.config.root / "backups"
    remote = str(target).startswith("oci://")
    return Repository(open_backend(target, registry=engine.registry if remote else None), passphrase=passphrase)


__all__ = ["open_repository", "Part", "PartReader", "PartStats", "Repository", "Snapshot", "cut_points", "select_prune"]
