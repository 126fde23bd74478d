"""Hostile and broken layers through the real image store; whiteouts under a real overlay mount.

Runs as root: overlay whiteouts are device nodes and opaque dirs ``trusted.*`` xattrs.
"""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest

from conftest import require_binary
from dockerbank.container.changes import changes
from dockerbank.errors import CorruptData
from dockerbank.image.importer import import_rootfs
from dockerbank.image.pack import pack_dir
from dockerbank.oci import digest as dg
from hostile_corpus import TarBuilder, build_corpus, snapshot

pytestmark = pytest.mark.integration

HOSTILE = [case.name for case in build_corpus(Path("/placeholder")) if case.error is not None]
NEUTRALISED = [case.name for case in build_corpus(Path("/placeholder")) if case.error is None]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    (path / "victim").write_text("original\n")
    return path


def store_is_untouched(engine) -> None:
    assert engine.images.list() == []
    assert engine.db.query("SELECT * FROM layers") == []
    layers_dir = engine.config.layers_dir
    assert not layers_dir.exists() or list(layers_dir.iterdir()) == []


@pytest.mark.parametrize("case_name", HOSTILE)
def test_hostile_layer_leaves_no_layer_behind(engine, outside: Path, case_name: str):
    case = next(c for c in build_corpus(outside) if c.name == case_name)
    before = snapshot(outside)
    with pytest.raises(case.error):
        engine.images.layers.add(None, io.BytesIO(case.data))  # LayerStore detects gzip itself
    store_is_untouched(engine)
    assert snapshot(outside) == before


@pytest.mark.parametrize("case_name", ["traversal", "hardlink-absolute-host-file", "truncated-tar-no-end-marker"])
def test_hostile_import_records_no_image(engine, outside: Path, case_name: str):
    case = next(c for c in build_corpus(outside) if c.name == case_name)
    with pytest.raises(case.error):
        import_rootfs(engine.images, io.BytesIO(case.data), "hostile:1")
    store_is_untouched(engine)
    assert engine.db.query("SELECT * FROM tags") == []


@pytest.mark.parametrize("case_name", NEUTRALISED)
def test_neutralised_layer_stays_inside_its_directory(engine, outside: Path, case_name: str):
    case = next(c for c in build_corpus(outside) if c.name == case_name)
    before = snapshot(outside)
    layer = engine.images.layers.add(None, io.BytesIO(case.data))
    diff = engine.images.layers.diff_dir(layer.chain_id)
    for rel in case.inside:
        assert os.path.lexists(diff / rel)
    assert snapshot(outside) == before


def test_truncated_gzip_of_a_real_rootfs_is_corrupt_data(engine, busybox_tar: Path):
    import gzip

    data = gzip.compress(busybox_tar.read_bytes())
    with pytest.raises(CorruptData):
        engine.images.layers.add(None, io.BytesIO(data[: len(data) * 2 // 3]))
    store_is_untouched(engine)


# --- real overlay mounts ---------------------------------------------------------------------


def mount_overlay(target: Path, lowers: list[Path], upper: Path | None = None, work: Path | None = None) -> None:
    require_binary("mount")
    options = "lowerdir=" + ":".join(str(p) for p in lowers)
    if upper is not None:
        options += f",upperdir={upper},workdir={work}"
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(target)], check=True,
                   capture_output=True)


def umount(target: Path) -> None:
    subprocess.run(["umount", str(target)], check=True)


def add_layer(engine, parent: str | None, data: bytes):
    return engine.images.layers.add(parent, io.BytesIO(data))


def test_whiteouts_hide_lower_files_in_a_real_overlay(engine, tmp_path: Path):
    base = (TarBuilder().dir("etc").file("etc/passwd", b"root\n").file("etc/group", b"g\n")
            .dir("var").dir("var/cache").file("var/cache/a", b"a").file("var/cache/b", b"b").bytes())
    top = (TarBuilder().dir("etc").file("etc/.wh.passwd", b"").dir("var").dir("var/cache")
           .file("var/cache/.wh..wh..opq", b"").file("var/cache/fresh", b"f").bytes())
    first = add_layer(engine, None, base)
    second = add_layer(engine, first.chain_id, top)
    merged = tmp_path / "merged"
    mount_overlay(merged, engine.images.layers.lower_dirs(second.chain_id))  # two lowers, read-only
    try:
        assert sorted(os.listdir(merged / "etc")) == ["group"]
        assert not (merged / "etc" / "passwd").exists()
        assert sorted(os.listdir(merged / "var" / "cache")) == ["fresh"]
    finally:
        umount(merged)


def test_commit_cycle_upper_to_layer_and_diff(engine, tmp_path: Path):
    """A container's upper dir, packed with overlay_upper, is a layer that reproduces its view."""
    base = (TarBuilder().dir("etc").file("etc/passwd", b"root\n").file("etc/group", b"g\n")
            .dir("data").file("data/old", b"o").bytes())
    layer = add_layer(engine, None, base)
    lowers = engine.images.layers.lower_dirs(layer.chain_id)
    upper, work, merged = tmp_path / "upper", tmp_path / "work", tmp_path / "merged"
    upper.mkdir()
    work.mkdir()
    mount_overlay(merged, lowers, upper, work)
    try:
        (merged / "etc" / "passwd").unlink()
        (merged / "etc" / "group").write_text("g\nnew\n")
        subprocess.run(["rm", "-rf", str(merged / "data")], check=True)
        (merged / "data").mkdir()
        (merged / "data" / "new").write_text("n")
        (merged / "added").write_text("a")
        expected_view = sorted(str(p.relative_to(merged)) for p in merged.rglob("*"))
    finally:
        umount(merged)
    assert [str(c) for c in changes(upper, lowers)] == [
        "A /added", "C /data", "A /data/new", "D /data/old", "C /etc", "C /etc/group", "D /etc/passwd",
    ]
    buffer = io.BytesIO()
    pack_dir(upper, buffer, overlay_upper=True)
    committed = add_layer(engine, layer.chain_id, buffer.getvalue())
    assert committed.diff_id == dg.of_bytes(buffer.getvalue())
    check = tmp_path / "check"
    mount_overlay(check, engine.images.layers.lower_dirs(committed.chain_id))
    try:
        assert sorted(str(p.relative_to(check)) for p in check.rglob("*")) == expected_view
        assert (check / "etc" / "group").read_text() == "g\nnew\n"
    finally:
        umount(check)
