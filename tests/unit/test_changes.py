"""changes(): docker diff from an upper dir over lower dirs (whiteouts and opaque dirs made by hand)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from dockerbank.container.changes import Change, LowerDirs, changes


def whiteout(path: Path) -> None:
    os.mknod(path, stat.S_IFCHR, 0)


def build(tmp_path: Path) -> tuple[Path, list[Path]]:
    """An image of two layers and a container layer that touched it the way Docker's test did."""
    base, top, upper = tmp_path / "base", tmp_path / "top", tmp_path / "upper"
    for directory in ("etc", "var/log", "var/tmp", "tmp", "root", "usr/lib"):
        (base / directory).mkdir(parents=True)
    (base / "etc" / "passwd").write_text("root\n")
    (base / "etc" / "group").write_text("root\n")
    (base / "var" / "log" / "old").write_text("x")
    os.symlink("/usr/lib", base / "lib")  # absolute: must not be followed on the host
    top.mkdir()
    (top / "etc").mkdir()
    (top / "etc" / "hosts").write_text("h\n")
    whiteout(top / "etc" / "group-")  # nothing below: harmless
    for path in sorted(base.rglob("*"), reverse=True) + sorted(top.rglob("*"), reverse=True):
        os.utime(path, (1_500_000_000, 1_500_000_000), follow_symlinks=False)
    # the container: echo >> /etc/group; rm /etc/passwd; rm -rf /root; mkdir -p /x/y; echo > /x/y/z;
    # echo > /tmp/a; rm -rf /var; mkdir /var; touch /var/new
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "group").write_text("root\n\n")
    whiteout(upper / "etc" / "passwd")
    whiteout(upper / "root")
    (upper / "x" / "y").mkdir(parents=True)
    (upper / "x" / "y" / "z").write_text("a\n")
    (upper / "tmp").mkdir()
    (upper / "tmp" / "a").write_text("b\n")
    (upper / "var").mkdir()
    os.setxattr(upper / "var", "trusted.overlay.opaque", b"y")
    (upper / "var" / "new").write_text("")
    (upper / "lib").mkdir()  # a directory replacing the symlink of the image
    (upper / "lib" / "added").write_text("")
    return upper, [top, base]


def test_docker_diff_of_a_container_layer(tmp_path: Path):
    upper, lowers = build(tmp_path)
    result = [str(change) for change in changes(upper, lowers)]
    assert result == [
        "C /etc",
        "C /etc/group",
        "D /etc/passwd",
        "C /lib",
        "A /lib/added",
        "D /root",
        "C /tmp",
        "A /tmp/a",
        "C /var",
        "D /var/log",
        "A /var/new",
        "D /var/tmp",
        "A /x",
        "A /x/y",
        "A /x/y/z",
    ]


def test_unchanged_parent_directories_are_not_reported(tmp_path: Path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "a" / "b").mkdir(parents=True)
    (lower / "a" / "b" / "f").write_text("x")
    (upper / "a" / "b").mkdir(parents=True)
    (upper / "a" / "b" / "f").write_text("changed")
    for root in (lower, upper):
        for path in (root / "a" / "b", root / "a"):
            os.utime(path, (1_500_000_000, 1_500_000_000))
    assert [str(c) for c in changes(upper, [lower])] == ["C /a/b/f"]


def test_lower_view_merges_layers_like_overlayfs(tmp_path: Path):
    upper_layer, lower_layer = tmp_path / "l1", tmp_path / "l0"
    (lower_layer / "d").mkdir(parents=True)
    (lower_layer / "d" / "old").write_text("")
    (lower_layer / "gone").write_text("")
    (upper_layer / "d").mkdir(parents=True)
    os.setxattr(upper_layer / "d", "trusted.overlay.opaque", b"y")
    (upper_layer / "d" / "new").write_text("")
    whiteout(upper_layer / "gone")
    view = LowerDirs([upper_layer, lower_layer])
    assert view.listdir("/d") == ["new"]
    assert view.lstat("/d/old") is None
    assert view.lstat("/gone") is None
    assert view.lstat("/d/new") is not None
    assert view.listdir("/") == ["d"]


def test_api_shape():
    assert Change("A", "/x").to_api() == {"Path": "/x", "Kind": 1}
    assert [Change(k, "/").api_kind for k in "CAD"] == [0, 1, 2]
