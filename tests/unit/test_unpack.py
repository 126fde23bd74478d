"""unpack_layer on well-formed layers: metadata kept (GNU tar as the oracle), whiteouts, overrides."""

from __future__ import annotations

import io
import os
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import require_binary
from dockerbank.errors import CorruptData, HostileArchive
from dockerbank.image.unpack import IdMapping, unpack_layer
from hostile_corpus import TarBuilder, describe

CAP_NET_RAW = bytes.fromhex("0100000200200000000000000000000000000000")  # cap_net_raw+ep, VFS v2


def make_tree(src: Path) -> None:
    """A tree with every kind of entry and metadata a layer can carry."""
    (src / "bin").mkdir()
    (src / "bin" / "tool").write_bytes(b"#!/bin/sh\necho tool\n")
    os.chown(src / "bin" / "tool", 0, 0)
    os.chmod(src / "bin" / "tool", 0o4755)
    os.setxattr(src / "bin" / "tool", "security.capability", CAP_NET_RAW)
    os.link(src / "bin" / "tool", src / "bin" / "tool-link")
    (src / "tmp").mkdir()
    os.chmod(src / "tmp", 0o1777)
    (src / "home" / "user").mkdir(parents=True)
    (src / "home" / "user" / "notes").write_text("mine\n")
    os.chown(src / "home" / "user", 1234, 5678)
    os.chown(src / "home" / "user" / "notes", 1234, 5678)
    os.setxattr(src / "home" / "user" / "notes", "user.comment", "hello \u00e9".encode())
    os.symlink("../bin/tool", src / "home" / "tool")
    os.symlink("/nonexistent/absolute", src / "dangling")
    os.mkfifo(src / "fifo", 0o640)
    os.mknod(src / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(src / "loop9", 0o660 | stat.S_IFBLK, os.makedev(7, 9))
    with open(src / "sparse", "wb") as handle:
        handle.seek(5 << 20)
        handle.write(b"end")
    (src / "big").write_bytes(os.urandom(3 << 20))
    for path in sorted(src.rglob("*"), reverse=True):
        os.utime(path, (1_500_000_000, 1_500_000_000), follow_symlinks=False)


def gnu_tar(src: Path, out: Path) -> None:
    subprocess.run(
        [require_binary("tar"), "--xattrs", "--xattrs-include=*", "--numeric-owner", "--sparse",
         "-C", str(src), "-cf", str(out), "."],
        check=True,
    )


def test_layer_matches_gnu_tar_extraction(tmp_path: Path):
    src, ours, theirs = tmp_path / "src", tmp_path / "ours", tmp_path / "theirs"
    for path in (src, ours, theirs):
        path.mkdir()
    make_tree(src)
    archive = tmp_path / "layer.tar"
    gnu_tar(src, archive)
    with open(archive, "rb") as handle:
        size = unpack_layer(handle, ours)
    subprocess.run(
        ["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-p", "-C", str(theirs), "-xf", str(archive)],
        check=True,
    )
    assert describe(ours) == describe(theirs) == describe(src)
    assert size == sum(os.lstat(p).st_size for p in src.rglob("*") if p.is_file() and not p.is_symlink()) - \
        os.lstat(src / "bin" / "tool-link").st_size
    assert os.getxattr(ours / "bin" / "tool", "security.capability") == CAP_NET_RAW
    assert os.lstat(ours / "bin" / "tool").st_mode & stat.S_ISUID
    assert os.lstat(ours / "sparse").st_blocks * 512 < 1 << 20, "holes of a sparse file stay holes"


def test_path_longer_than_path_max(tmp_path: Path):
    """Unpacking walks by directory fd, so a 6 KB name is fine (it is long, not hostile)."""
    components = [f"{level:03d}" + "d" * 200 for level in range(30)]
    data = TarBuilder().file("/".join(components) + "/bottom", b"deep\n").bytes()
    unpack_layer(io.BytesIO(data), tmp_path)
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        for name in components:
            next_fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        assert os.stat("bottom", dir_fd=fd).st_size == 5
    finally:
        os.close(fd)


def test_directory_mtimes_survive_their_children(tmp_path: Path):
    data = TarBuilder().dir("a").dir("a/b").file("a/b/f").file("a/g").bytes()
    unpack_layer(io.BytesIO(data), tmp_path)
    assert int(os.lstat(tmp_path / "a").st_mtime) == 1_600_000_000
    assert int(os.lstat(tmp_path / "a" / "b").st_mtime) == 1_600_000_000


def test_whiteouts_become_overlay_whiteouts(tmp_path: Path):
    data = (TarBuilder().dir("etc").file("etc/.wh.passwd", b"").dir("var").file("var/.wh..wh..opq", b"")
            .file("var/keep").file(".wh..wh..plnk", b"").dir(".wh..wh.aufs").file(".wh..wh.aufs/x").bytes())
    unpack_layer(io.BytesIO(data), tmp_path)
    info = os.lstat(tmp_path / "etc" / "passwd")
    assert stat.S_ISCHR(info.st_mode) and info.st_rdev == 0
    assert not (tmp_path / "etc" / ".wh.passwd").exists()
    assert os.getxattr(tmp_path / "var", "trusted.overlay.opaque") == b"y"
    assert (tmp_path / "var" / "keep").is_file()
    assert not os.path.lexists(tmp_path / ".wh..wh..plnk")
    assert not os.path.lexists(tmp_path / ".wh..wh.aufs")


def test_whiteout_without_parent_entry_makes_the_parent(tmp_path: Path):
    unpack_layer(io.BytesIO(TarBuilder().file("usr/share/.wh.doc", b"").bytes()), tmp_path)
    assert stat.S_ISCHR(os.lstat(tmp_path / "usr" / "share" / "doc").st_mode)
    assert stat.S_IMODE(os.lstat(tmp_path / "usr").st_mode) == 0o755


def test_whiteout_of_a_file_of_the_same_layer_is_refused(tmp_path: Path):
    data = TarBuilder().file("a").file(".wh.a", b"").bytes()
    with pytest.raises(CorruptData, match="same layer"):
        unpack_layer(io.BytesIO(data), tmp_path)


def test_later_entries_override_earlier_ones(tmp_path: Path):
    data = (TarBuilder().file("x", b"file").dir("x").file("x/inner")   # file replaced by dir
            .dir("y").file("y/inner").file("y", b"now a file")          # dir replaced by file
            .dir("z").file("z/first").dir("z", 0o700).file("z/second")  # dir over dir merges
            .symlink("s", "/etc").file("s", b"plain")                    # symlink replaced
            .file("h", b"old").file("h", b"new").bytes())
    unpack_layer(io.BytesIO(data), tmp_path)
    assert (tmp_path / "x" / "inner").is_file()
    assert (tmp_path / "y").read_bytes() == b"now a file"
    assert sorted(os.listdir(tmp_path / "z")) == ["first", "second"]
    assert stat.S_IMODE(os.lstat(tmp_path / "z").st_mode) == 0o700
    assert not os.path.islink(tmp_path / "s") and (tmp_path / "s").read_bytes() == b"plain"
    assert (tmp_path / "h").read_bytes() == b"new"


def test_rewriting_a_hardlinked_file_does_not_change_its_twin(tmp_path: Path):
    data = TarBuilder().file("a", b"one").hardlink("b", "a").file("a", b"two").bytes()
    unpack_layer(io.BytesIO(data), tmp_path)
    assert (tmp_path / "a").read_bytes() == b"two"
    assert (tmp_path / "b").read_bytes() == b"one"


def test_hardlink_through_a_symlinked_parent_inside_the_layer(tmp_path: Path):
    data = TarBuilder().dir("usr").dir("usr/bin").file("usr/bin/sh").symlink("bin", "usr/bin") \
        .hardlink("usr/bin/ash", "/bin/sh").bytes()
    unpack_layer(io.BytesIO(data), tmp_path)
    assert os.lstat(tmp_path / "usr/bin/ash").st_ino == os.lstat(tmp_path / "usr/bin/sh").st_ino


def test_hardlink_into_aufs_metadata_is_refused(tmp_path: Path):
    data = TarBuilder().file(".wh..wh.plnk/1234.56", b"x").hardlink("a", ".wh..wh.plnk/1234.56").bytes()
    with pytest.raises(HostileArchive):
        unpack_layer(io.BytesIO(data), tmp_path)


def test_id_mapping_shifts_owners(tmp_path: Path):
    builder = TarBuilder()
    info_data = builder.dir("d").file("d/f").bytes()
    unpack_layer(io.BytesIO(info_data), tmp_path, IdMapping(100000, 200000))
    assert (os.lstat(tmp_path / "d").st_uid, os.lstat(tmp_path / "d").st_gid) == (100000, 200000)
    assert os.lstat(tmp_path / "d" / "f").st_uid == 100000


def test_root_directory_entry_sets_the_root_mode(tmp_path: Path):
    dest = tmp_path / "dest"
    dest.mkdir(mode=0o700)
    unpack_layer(io.BytesIO(TarBuilder().dir("./", 0o755).file("./etc/x").bytes()), dest)
    assert stat.S_IMODE(os.lstat(dest).st_mode) == 0o755
    assert (dest / "etc" / "x").is_file()


def test_binary_xattr_values_round_trip_through_pax(tmp_path: Path):
    value = bytes(range(256))
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    os.setxattr(src / "f", "trusted.blob", value)
    from dockerbank.image.pack import pack_dir

    buffer = io.BytesIO()
    pack_dir(src, buffer)
    dest = tmp_path / "dest"
    dest.mkdir()
    unpack_layer(io.BytesIO(buffer.getvalue()), dest)
    assert os.getxattr(dest / "f", "trusted.blob") == value


def test_unsupported_entry_type_is_corrupt(tmp_path: Path):
    import tarfile

    builder = TarBuilder()
    info = tarfile.TarInfo("weird")
    info.type = b"Z"
    builder.tar.addfile(info)
    with pytest.raises(CorruptData, match="unsupported"):
        unpack_layer(io.BytesIO(builder.bytes()), tmp_path)
