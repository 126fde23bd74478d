"""``backup copy`` over storage backends (fakes for the failures): only missing chunks are
sent, an interrupted copy leaves no snapshot behind and resumes where it stopped, an
existing target with another key gets re-encrypted chunks."""

from __future__ import annotations

import io
import os
import threading

import pytest

from dockerbank.backup.copy import copy_snapshots
from dockerbank.backup.repository import Repository, Snapshot
from dockerbank.backup.storage import DirBackend
from dockerbank.errors import Offline


class Flaky(DirBackend):
    """A directory whose connection 'breaks' after ``budget`` chunk uploads; counts chunk puts."""

    def __init__(self, path, budget: int | None = None):
        super().__init__(path)
        self.budget = budget
        self.chunk_puts = 0
        self.mutex = threading.Lock()   # copy uploads from several threads

    def put(self, name, data, *, refs=(), durable=True):
        if name.startswith("chunks/"):
            with self.mutex:
                if self.budget is not None and self.chunk_puts >= self.budget:
                    raise Offline("connection to the registry broke")
                self.chunk_puts += 1
        super().put(name, data, refs=refs, durable=durable)


def _source(path, passphrase: bytes | None = None) -> tuple[Repository, Snapshot]:
    repo = Repository(path, passphrase=lambda: passphrase)
    if passphrase:
        repo.create(encrypt=True, passphrase=passphrase)
    part, _ = repo.write_part("volume", "v", "tar", io.BytesIO(os.urandom(13 << 20)))
    snap = Snapshot("20260101T000000Z-aaaaaa", "2026-01-01T00:00:00Z", "t", "h", "/r", [], "none", [part])
    repo.commit(snap)
    return repo, snap


def test_interrupted_copy_leaves_no_snapshot_and_resumes(tmp_path):
    source, snap = _source(tmp_path / "src", b"pw")
    total = len({d for d, _ in snap.parts[0].chunks})
    assert total >= 4
    broken = Flaky(tmp_path / "dst", budget=2)
    with pytest.raises(Offline):
        copy_snapshots(source, Repository(broken, passphrase=lambda: b"pw"))
    assert Repository(tmp_path / "dst", passphrase=lambda: b"pw").snapshots() == []   # nothing half-written
    resumed = Flaky(tmp_path / "dst")
    report = copy_snapshots(source, Repository(resumed, passphrase=lambda: b"pw"))
    assert report.copied == [snap.id] and report.raw
    assert resumed.chunk_puts == total - 2 == report.chunks_sent
    target = Repository(tmp_path / "dst", passphrase=lambda: b"pw")
    assert target.verify(target.get(snap.id)) == []
    again = copy_snapshots(source, target)
    assert again.skipped == [snap.id] and again.chunks_sent == 0


def test_copy_into_a_target_with_another_key_reencrypts(tmp_path):
    source, snap = _source(tmp_path / "src", b"one")
    target = Repository(tmp_path / "dst", passphrase=lambda: b"two")
    target.create(encrypt=True, passphrase=b"two")
    report = copy_snapshots(source, target)
    assert not report.raw and report.copied == [snap.id]
    copied = Repository(tmp_path / "dst", passphrase=lambda: b"two").get(snap.id)
    assert {d for d, _ in copied.parts[0].chunks}.isdisjoint({d for d, _ in snap.parts[0].chunks})
    assert target.open_part(copied.parts[0]).read() == source.open_part(snap.parts[0]).read()
