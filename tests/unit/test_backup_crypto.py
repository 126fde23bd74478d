"""Encrypted backup repositories: no plaintext at rest, authenticated chunks and manifests,
keyed chunk IDs that still deduplicate, passphrases as key files (add, remove, wrong one)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from dockerbank.backup.crypto import WrongPassphrase
from dockerbank.backup.repository import Repository, Snapshot
from dockerbank.errors import Conflict, CorruptData, InvalidArgument

PASS = b"correct horse battery staple"


def _files(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()]


def _volume_data(marker: bytes) -> bytes:
    # random bytes around the marker: zstd stores them raw, so a plain repository holds the marker verbatim
    return os.urandom(1 << 20) + marker + os.urandom(2 << 20)


def _backup(repo: Repository, data: bytes, sid: str = "s1") -> Snapshot:
    part, _ = repo.write_part("volume", "secret-volume-name", "tar", io.BytesIO(data))
    snap = Snapshot(sid, "2026-01-01T00:00:00Z", "t", "h", "/r", [], "none", [part])
    repo.commit(snap)
    return snap


def _encrypted(path: Path, passphrase: bytes = PASS) -> Repository:
    repo = Repository(path, passphrase=lambda: passphrase)
    repo.create(encrypt=True, passphrase=passphrase)
    return Repository(path, passphrase=lambda: passphrase)   # reopened: unlocks from its key file


def test_encrypted_repository_holds_no_plaintext(tmp_path):
    marker = os.urandom(4096)
    data = _volume_data(marker)
    plain = Repository(tmp_path / "plain")
    _backup(plain, data)
    # the control: the same data in a plain repository is found by a byte search (so the check can fail)
    # (slices: a chunk or zstd block boundary may cut the marker, never all of them)
    slices = [marker[i:i + 64] for i in range(0, len(marker), 512)]
    assert any(piece in p.read_bytes() for p in _files(plain.path) for piece in slices)
    assert any(b"secret-volume-name" in p.read_bytes() for p in _files(plain.path))

    repo = _encrypted(tmp_path / "enc")
    snap = _backup(repo, data)
    for path in _files(repo.path):
        content = path.read_bytes()
        assert not any(piece in content for piece in slices), path
        assert b"secret-volume-name" not in content, path
    assert repo.open_part(snap.parts[0]).read() == data
    assert repo.verify(snap) == []
    # keyed IDs: not the sha256 a plain repository uses for the same chunks
    assert {d for d, _ in snap.parts[0].chunks}.isdisjoint({p.name for p in _files(plain.path / "chunks")})


def test_keyed_chunk_ids_still_deduplicate(tmp_path):
    repo = _encrypted(tmp_path / "enc")
    data = os.urandom(3 << 20)
    _, first = repo.write_part("volume", "v", "tar", io.BytesIO(data))
    _, second = repo.write_part("volume", "v", "tar", io.BytesIO(data))
    assert first.new_chunks > 0
    assert second.new_chunks == 0 and second.dedup_bytes == len(data)


def test_flipped_byte_is_named_by_verify(tmp_path):
    repo = _encrypted(tmp_path / "enc")
    snap = _backup(repo, os.urandom(9 << 20))   # > 2 max-size chunks: at least 3
    victim_id = snap.parts[0].chunks[1][0]
    victim = repo.chunk_path(victim_id)
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    victim.write_bytes(bytes(raw))
    problems = Repository(repo.path, passphrase=lambda: PASS).verify(snap)
    assert len(problems) == 1
    assert victim_id in problems[0] and "fails authentication" in problems[0]


def test_swapped_chunk_fails_authentication(tmp_path):
    repo = _encrypted(tmp_path / "enc")
    snap = _backup(repo, os.urandom(9 << 20))   # > 2 max-size chunks: at least 3
    (a, _), (b, _) = snap.parts[0].chunks[:2]
    repo.chunk_path(a).write_bytes(repo.chunk_path(b).read_bytes())
    with pytest.raises(CorruptData, match=a):
        repo.read_chunk(a)


def test_tampered_manifest_is_refused(tmp_path):
    repo = _encrypted(tmp_path / "enc")
    snap = _backup(repo, b"small")
    path = repo.snapshots_dir / f"{snap.id}.json"
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x80
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptData, match="snapshot s1 is corrupt: it fails authentication"):
        Repository(repo.path, passphrase=lambda: PASS).snapshots()


def test_wrong_passphrase_and_missing_passphrase(tmp_path):
    _backup(_encrypted(tmp_path / "enc"), b"data")
    with pytest.raises(WrongPassphrase, match="wrong passphrase"):
        Repository(tmp_path / "enc", passphrase=lambda: b"guess").snapshots()
    with pytest.raises(InvalidArgument, match="is encrypted"):
        Repository(tmp_path / "enc").snapshots()


def test_key_add_and_remove(tmp_path):
    repo = _encrypted(tmp_path / "enc")
    snap = _backup(repo, os.urandom(1 << 20))
    new_id = repo.add_key(b"second passphrase")
    second = Repository(repo.path, passphrase=lambda: b"second passphrase")
    assert second.get("s1").parts[0].sha256 == snap.parts[0].sha256
    listed = {k["id"]: k for k in second.keys()}
    assert len(listed) == 2 and listed[new_id]["current"]
    with pytest.raises(Conflict):
        second.remove_key(new_id)          # the key in use stays
    first_id = next(k for k in listed if k != new_id)
    assert second.remove_key(first_id[:6]) == first_id
    with pytest.raises(WrongPassphrase):
        Repository(repo.path, passphrase=lambda: PASS).snapshots()
    assert Repository(repo.path, passphrase=lambda: b"second passphrase").open_part(snap.parts[0]).read()


def test_init_refuses_an_existing_repository(tmp_path):
    _encrypted(tmp_path / "enc")
    with pytest.raises(Conflict):
        Repository(tmp_path / "enc").create(encrypt=True, passphrase=PASS)
