"""The backup repository: content-defined chunks, dedup, verify, prune rules, dump recipes."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta

import pytest

from dockerbank.backup import consistency
from dockerbank.backup.repository import Repository, Snapshot, cut_points, select_prune
from dockerbank.errors import CorruptData, InvalidArgument


def _data(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def _offsets(lengths: list[int]) -> set[int]:
    out, pos = set(), 0
    for n in lengths:
        pos += n
        out.add(pos)
    return out


def test_chunker_is_deterministic_and_content_defined():
    data = _data(16 << 20)
    first = cut_points(data)
    assert first == cut_points(data)
    assert sum(first) == len(data)
    assert 8 <= len(first) <= 40            # ~1 MiB average (min 256 KiB, max 4 MiB)
    # insert 100 bytes in the middle: the cuts after it are the same, shifted by 100
    middle = 8 << 20
    changed = data[:middle] + b"x" * 100 + data[middle:]
    after = cut_points(changed)
    old_cuts = {c + 100 if c > middle else c for c in _offsets(first)}
    new_cuts = _offsets(after)
    differing = len(old_cuts ^ new_cuts)
    assert differing <= 4, (len(first), differing)  # only the chunk(s) around the insertion change


def test_second_backup_of_mostly_unchanged_data_adds_little(tmp_path):
    repo = Repository(tmp_path / "repo")
    data = _data(20 << 20, seed=2)
    _, stats1 = repo.write_part("volume", "v", "tar", io.BytesIO(data))
    assert stats1.new_bytes == len(data) and stats1.dedup_bytes == 0
    edited = bytearray(data)
    edited[5 << 20:(5 << 20) + 10] = b"0123456789"       # a small edit in place
    edited += b"appended" * 1000
    part2, stats2 = repo.write_part("volume", "v", "tar", io.BytesIO(bytes(edited)))
    assert stats2.size == len(edited)
    assert stats2.new_bytes < len(edited) * 0.25, stats2     # only the chunks around the edits
    assert stats2.dedup_bytes > len(edited) * 0.75
    assert repo.open_part(part2).read() == bytes(edited)


def _snapshot(repo: Repository, part, sid: str = "s1", created: str = "2026-01-01T00:00:00Z") -> Snapshot:
    snap = Snapshot(sid, created, "0", "h", "/r", [], "pause", [part])
    repo.commit(snap)
    return snap


def test_verify_detects_a_flipped_byte(tmp_path):
    repo = Repository(tmp_path / "repo")
    part, _ = repo.write_part("volume", "v", "tar", io.BytesIO(_data(3 << 20, seed=3)))
    snap = _snapshot(repo, part)
    assert repo.verify(snap) == []
    victim = repo.chunk_path(part.chunks[1][0])
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    victim.write_bytes(bytes(raw))
    problems = repo.verify(repo.get("s1"))
    assert len(problems) == 1 and part.chunks[1][0] in problems[0]
    with pytest.raises(CorruptData):
        repo.open_part(part).read()


def test_manifest_names_only_existing_chunks_and_gc_removes_unused(tmp_path):
    repo = Repository(tmp_path / "repo")
    part_a, _ = repo.write_part("volume", "a", "tar", io.BytesIO(_data(2 << 20, seed=4)))
    part_b, _ = repo.write_part("volume", "b", "tar", io.BytesIO(_data(2 << 20, seed=5)))
    _snapshot(repo, part_a, "sa")
    _snapshot(repo, part_b, "sb", "2026-01-02T00:00:00Z")
    assert [s.id for s in repo.snapshots()] == ["sa", "sb"]
    with repo.lock(exclusive=True):
        repo.remove(["sa"])
        count, freed = repo.gc()
    assert count == len(part_a.chunks) and freed > 0
    assert all(repo.chunk_path(d).exists() for d, _ in part_b.chunks)
    assert repo.get("latest").id == "sb" and repo.get("s").id == "sb"
    assert not list((repo.path / "tmp").iterdir())


def test_prune_keeps_the_right_snapshots():
    start = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday, midnight
    snaps = []
    for day in range(21):                                   # three weeks, two snapshots a day
        for hour in (1, 13):
            when = start + timedelta(days=day, hours=hour)
            snaps.append(Snapshot(f"{day:02d}-{hour:02d}", when.strftime("%Y-%m-%dT%H:%M:%SZ"), "0", "h", "/r", [],
                                  "pause", []))
    keep, remove = select_prune(snaps, keep_last=3)
    assert [s.id for s in keep] == ["19-13", "20-01", "20-13"]
    keep, _ = select_prune(snaps, keep_daily=2)
    assert [s.id for s in keep] == ["19-13", "20-13"]       # newest of each of the last two days
    keep, _ = select_prune(snaps, keep_weekly=2)
    ids = [s.id for s in keep]
    assert ids[-1] == "20-13" and len(ids) == 2             # newest of the last two ISO weeks
    keep, remove = select_prune(snaps, keep_last=1, keep_daily=3, keep_weekly=3)
    assert len(keep) + len(remove) == len(snaps)
    assert {"20-13", "19-13", "18-13"} <= {s.id for s in keep}
    with pytest.raises(InvalidArgument):
        select_prune(snaps)


def test_dump_recipes_by_label_image_and_env():
    assert consistency.recipe_for("postgres:16", [], {}) is consistency.POSTGRES
    assert consistency.recipe_for("docker.io/library/mariadb:11", [], {}) is consistency.MYSQL
    assert consistency.recipe_for("myorg/db", ["MYSQL_ROOT_PASSWORD=x"], {}) is consistency.MYSQL
    assert consistency.recipe_for("debian", ["PG_VERSION=15"], {}) is consistency.POSTGRES
    assert consistency.recipe_for("busybox", ["PATH=/bin"], {}) is None
    label = consistency.recipe_for("busybox", [], {consistency.DUMP_LABEL: "cat /data/db",
                                                   consistency.RESTORE_LABEL: "cat > /data/db"})
    assert label.dump == "cat /data/db" and label.restore == "cat > /data/db" and label.ready == "true"
    assert "--single-transaction" in consistency.MYSQL.dump and "pg_dumpall" in consistency.POSTGRES.dump


def test_database_raw_files_are_recognised(tmp_path):
    (tmp_path / "pg").mkdir()
    (tmp_path / "pg" / "PG_VERSION").write_text("15\n")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "notes.txt").write_text("x")
    assert consistency.looks_like_database(tmp_path / "pg") == "PostgreSQL"
    assert consistency.looks_like_database(tmp_path / "plain") is None


def test_tar_capture_is_stable_and_fails_loudly(tmp_path):
    """GNU tar's stream of an unchanged tree is byte-identical (no atime/ctime, no PID in the pax
    header names), so a changed-elsewhere volume still dedups; a tar error is an error."""
    import os
    import tarfile

    from dockerbank.backup import archive
    from dockerbank.errors import DockerbankError

    src = tmp_path / "src"
    (src / "b").mkdir(parents=True)
    (src / "b" / "f").write_bytes(b"x" * 5000)
    (src / "a").write_text("first")
    os.utime(src / "a", ns=(1, 1_700_000_000_123_456_789))

    def capture() -> bytes:
        with archive.tar_stream(src) as stream:
            return stream.read()

    first = capture()
    os.stat(src / "b" / "f")
    (src / "b" / "f").read_bytes()             # moves the atime
    assert capture() == first
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        names = tar.getnames()
        assert names == sorted(names, key=lambda n: n.split("/")) and names[0] == "."
        assert tar.getmember("./a").mtime == pytest.approx(1_700_000_000.123456789)
        assert all("atime" not in m.pax_headers and "ctime" not in m.pax_headers for m in tar.getmembers())
    with pytest.raises(DockerbankError, match="cannot read"), archive.tar_stream(tmp_path / "missing") as stream:
        stream.read()
