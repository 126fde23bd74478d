"""Real mounts: stale overlay mounts are found and lazily unmounted (``system check``)."""

from __future__ import annotations

import subprocess

import pytest

from dockerbank.host.mounts import is_mounted, overlay_mounts_under, read_mounts, unmount, unmount_all_under


@pytest.fixture
def overlay(tmp_path):
    """A real overlay mount at <tmp>/containers/c1/merged."""
    base = tmp_path / "containers" / "c1"
    for sub in ("lower", "upper", "work", "merged"):
        (base / sub).mkdir(parents=True)
    (base / "lower" / "f").write_text("x")
    opts = f"lowerdir={base / 'lower'},upperdir={base / 'upper'},workdir={base / 'work'}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(base / "merged")], check=True)
    try:
        yield tmp_path, base
    finally:
        mounted = [m.mount_point for m in read_mounts() if m.mount_point.startswith(str(tmp_path))]
        for mount in sorted(mounted, reverse=True):
            subprocess.run(["umount", "-l", mount], check=False)


def test_stale_overlay_found_and_unmounted_lazily(overlay):
    tmp_path, base = overlay
    found = overlay_mounts_under(tmp_path / "containers")
    assert [m.mount_point for m in found] == [str(base / "merged")]
    assert found[0].super_option("upperdir") == str(base / "upper")
    assert is_mounted(base / "merged")
    # a file kept open does not block a lazy unmount (a busy mount left by a crash)
    with open(base / "merged" / "f") as handle:
        assert unmount(base / "merged", lazy=True)
        assert handle.read() == "x"
    assert not is_mounted(base / "merged")
    assert overlay_mounts_under(tmp_path / "containers") == []
    assert unmount(base / "merged") is False  # nothing mounted any more


def test_unmount_all_under_deepest_first(tmp_path):
    outer = tmp_path / "m"
    outer.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(outer)], check=True)
    try:
        (outer / "inner").mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(outer / "inner")], check=True)
        done = unmount_all_under(tmp_path)
        assert done == [str(outer / "inner"), str(outer)]
        assert not is_mounted(outer)
    finally:
        subprocess.run(["umount", "-R", "-l", str(outer)], check=False, capture_output=True)
