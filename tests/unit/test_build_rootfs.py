"""The merged view of layer directories: whiteouts and opaque directories in both forms."""

from __future__ import annotations

import os
from pathlib import Path

from dockerbank.build.rootfs import MergedView


def layer(root: Path, name: str, files: dict[str, str | None]) -> Path:
    base = root / name
    base.mkdir()
    for rel, content in files.items():
        path = base / rel
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    return base


def test_union_whiteouts_and_opaque(tmp_path: Path):
    low = layer(tmp_path, "low", {"a/x": "1", "a/b/deep": "d", "keep": "k", "gone": "g", "etc/conf": "c"})
    top = layer(tmp_path, "top", {"a/.wh..wh..opq": "", "a/new": "n", ".wh.gone": "", "etc/extra": "e"})
    view = MergedView([top, low])
    assert view.listdir("") == ["a", "etc", "keep"]
    assert view.listdir("a") == ["new"]            # opaque: nothing of the lower a/ shows
    assert view.locate("a/x") is None and view.locate("a/b/deep") is None
    assert view.read_text("etc/conf") == "c" and view.read_text("etc/extra") == "e"
    assert view.lstat("gone") is None
    assert view.is_dir("etc") and not view.is_dir("keep")


def test_symlinks_resolve_inside_the_view(tmp_path: Path):
    low = layer(tmp_path, "low", {"usr/lib/x": "x"})
    os.symlink("usr/lib", low / "lib")
    os.symlink("/usr/lib/../../../../", low / "escape")
    view = MergedView([low])
    assert view.resolve("lib/x") == "usr/lib/x"
    assert view.is_dir("lib")
    assert view.resolve("escape/usr") == "usr"      # never above the root
