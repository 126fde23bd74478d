"""``backup copy``: move snapshots between repositories without re-reading the saved data.

Only chunks the target lacks are sent. A target that does not exist yet is created with the
source's parameters and key files (the same passphrases open it), so chunks travel as stored
bytes, neither decrypted nor recompressed. Between repositories with different keys each
chunk is decrypted, named with the target's key and sealed again. The manifest goes last, so
an interrupted copy leaves no snapshot a ``verify`` would take as whole; run again, it skips
what arrived (a registry is asked by the blob's digest, a directory has the files).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from dockerbank.backup.repository import Part, Repository, Snapshot

PARALLEL = 8   # transfers in flight: a registry round trip per chunk, latency-bound


@dataclass
class CopyReport:
    copied: list[str] = field(default_factory=list)       # snapshot IDs written to the target
    skipped: list[str] = field(default_factory=list)      # already in the target
    chunks_sent: int = 0
    bytes_sent: int = 0                                   # stored bytes sent
    chunks_present: int = 0
    seconds: float = 0.0
    raw: bool = True                                      # chunks moved as stored (same key)


def copy_snapshots(source: Repository, target: Repository, refs: list[str] | None = None,
                   progress: Callable[[int], None] | None = None) -> CopyReport:
    """Copy the snapshots ``refs`` names (all when empty) from ``source`` to ``target``."""
    started = time.monotonic()
    report = CopyReport()
    snaps = [source.get(r) for r in refs] if refs else source.snapshots()
    if not target.exists():
        target.adopt(source)
    report.raw = source.codec.fingerprint == target.codec.fingerprint
    present = {s.id for s in target.snapshots()}
    lock = threading.Lock()
    with source.lock(exclusive=False), target.lock(exclusive=False):
        for snap in snaps:
            if snap.id in present:
                report.skipped.append(snap.id)
                continue
            if report.raw:
                new = _copy_raw(source, target, snap, report, lock, progress)
            else:
                new = _copy_reencrypt(source, target, snap, report, lock, progress)
            target.commit(new)
            report.copied.append(snap.id)
    report.seconds = time.monotonic() - started
    return report


def _copy_raw(source: Repository, target: Repository, snap: Snapshot, report: CopyReport,
              lock: threading.Lock, progress) -> Snapshot:
    lengths = {d: n for part in snap.parts for d, n in part.chunks}

    def move(digest: str) -> None:
        if target.has_chunk(digest):
            with lock:
                report.chunks_present += 1
        else:
            stored = source.get_raw_chunk(digest)
            target.put_raw_chunk(digest, stored)
            with lock:
                report.chunks_sent += 1
                report.bytes_sent += len(stored)
        if progress:
            progress(lengths[digest])

    with ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="backup-copy") as pool:
        list(pool.map(move, list(lengths)))
    return snap


def _copy_reencrypt(source: Repository, target: Repository, snap: Snapshot, report: CopyReport,
                    lock: threading.Lock, progress) -> Snapshot:
    mapping: dict[str, str] = {}
    local = threading.local()

    def move(digest: str) -> None:
        data = source.read_chunk(digest)
        new_id, _length, new, stored = target._store_chunk(data, local)
        with lock:
            mapping[digest] = new_id
            if new:
                report.chunks_sent += 1
                report.bytes_sent += stored
            else:
                report.chunks_present += 1
        if progress:
            progress(len(data))

    digests = list(dict.fromkeys(d for part in snap.parts for d, _ in part.chunks))
    with ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="backup-copy") as pool:
        list(pool.map(move, digests))
    parts = [Part(p.kind, p.name, p.format, p.size, p.sha256, [[mapping[d], n] for d, n in p.chunks], dict(p.meta))
             for p in snap.parts]
    return Snapshot(snap.id, snap.created, snap.engine_version, snap.hostname, snap.source_root, list(snap.tags),
                    snap.consistency, parts, list(snap.warnings), dict(snap.stats))


__all__ = ["CopyReport", "copy_snapshots"]
