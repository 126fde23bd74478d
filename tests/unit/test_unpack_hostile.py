"""The hostile corpus against unpack_layer: the right error, and nothing written outside dest."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockerbank.image.unpack import unpack_layer
from hostile_corpus import build_corpus, snapshot

CASE_NAMES = [case.name for case in build_corpus(Path("/placeholder"))]


@pytest.fixture
def arena(tmp_path: Path):
    """A destination and, next to it, a sentinel directory holding a victim file."""
    dest = tmp_path / "dest"
    dest.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("original\n")
    return dest, outside


@pytest.mark.parametrize("case_name", CASE_NAMES)
def test_hostile_case(arena, case_name: str):
    dest, outside = arena
    case = next(c for c in build_corpus(outside) if c.name == case_name)
    before = snapshot(outside)
    if case.error is None:
        unpack_layer(case.stream(), dest)
        for rel in case.inside:
            assert os.path.lexists(dest / rel), f"{rel} missing below dest"
    else:
        with pytest.raises(case.error) as caught:
            unpack_layer(case.stream(), dest)
        assert str(caught.value), "the error must say what is wrong"
        assert "\n" not in str(caught.value)
    assert snapshot(outside) == before, "the sentinel directory outside dest changed"
    assert (outside / "victim").read_text() == "original\n"
    assert not (outside / "pwned").exists()
    assert not (outside / "evil").exists()


def test_hostile_errors_name_the_entry(arena):
    dest, outside = arena
    case = next(c for c in build_corpus(outside) if c.name == "traversal")
    with pytest.raises(Exception) as caught:
        unpack_layer(case.stream(), dest)
    assert "pwned" in str(caught.value)


def test_symlink_targets_are_kept_verbatim(arena):
    dest, outside = arena
    case = next(c for c in build_corpus(outside) if c.name == "symlink-write-through")
    unpack_layer(case.stream(), dest)
    assert os.readlink(dest / "a") == str(outside)  # meaningful inside the container only
    assert (dest / str(outside).lstrip("/") / "pwned").is_file()


def test_overwritten_symlink_is_replaced_not_followed(arena):
    dest, outside = arena
    case = next(c for c in build_corpus(outside) if c.name == "overwrite-symlink-last-component")
    unpack_layer(case.stream(), dest)
    assert not os.path.islink(dest / "f") and (dest / "f").is_file()


def test_smuggled_overlay_xattr_is_dropped(arena):
    dest, outside = arena
    case = next(c for c in build_corpus(outside) if c.name == "overlay-xattr-smuggled")
    unpack_layer(case.stream(), dest)
    assert "trusted.overlay.redirect" not in os.listxattr(dest / "d" / "f")


def test_device_through_symlink_lands_inside(arena):
    dest, outside = arena
    case = next(c for c in build_corpus(outside) if c.name == "device-through-symlink")
    unpack_layer(case.stream(), dest)
    info = os.lstat(dest / str(outside).lstrip("/") / "evil")
    assert os.major(info.st_rdev) == 1 and os.minor(info.st_rdev) == 3


@pytest.mark.parametrize("case_name", ["traversal", "symlink-write-through", "symlink-relative-escape"])
def test_corpus_bites_a_naive_extractor(arena, case_name: str):
    """The corpus is really hostile: plain tarfile.extractall writes into the sentinel."""
    import tarfile

    dest, outside = arena
    case = next(c for c in build_corpus(outside) if c.name == case_name)
    with tarfile.open(fileobj=case.stream(), mode="r|") as archive:
        trusting = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
        archive.extractall(dest, **trusting)
    assert (outside / "pwned").exists()
