"""pack_dir / pack_path / extract_into: round trips, determinism, whiteouts, cp confinement."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from dockerbank.errors import Conflict, HostileArchive, InvalidArgument, NotFound
from dockerbank.image.pack import pack_dir, pack_path, stat_in_root
from dockerbank.image.unpack import extract_into, unpack_layer
from hostile_corpus import TarBuilder, describe
from test_unpack import make_tree


def names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return archive.getnames()


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return {m.name: m for m in archive.getmembers()}


def packed(src: Path, **kwargs) -> bytes:
    buffer = io.BytesIO()
    pack_dir(src, buffer, **kwargs)
    return buffer.getvalue()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    make_tree(src)
    return src


def test_round_trip_keeps_everything(tree: Path, tmp_path: Path):
    data = packed(tree)
    dest = tmp_path / "dest"
    dest.mkdir()
    unpack_layer(io.BytesIO(data), dest)
    assert describe(dest) == describe(tree)


def test_output_is_deterministic_and_readable_by_gnu_tar(tree: Path, tmp_path: Path):
    first, second = packed(tree), packed(tree)
    assert first == second
    (tmp_path / "out.tar").write_bytes(first)
    listing = subprocess.run(["tar", "-tvf", str(tmp_path / "out.tar")], check=True, capture_output=True, text=True)
    assert "bin/tool-link link to bin/tool" in listing.stdout


def test_entries_in_walk_order_with_numeric_owners_and_hardlinks(tree: Path):
    data = packed(tree)
    order = names(data)
    assert order.index("bin") < order.index("bin/tool") < order.index("bin/tool-link") < order.index("dangling")
    info = members(data)
    assert info["bin/tool-link"].type == tarfile.LNKTYPE and info["bin/tool-link"].linkname == "bin/tool"
    assert info["home/user/notes"].uid == 1234 and info["home/user/notes"].uname == ""
    assert info["bin/tool"].pax_headers["SCHILY.xattr.security.capability"]
    assert info["null"].ischr() and (info["null"].devmajor, info["null"].devminor) == (1, 3)
    assert "./" not in order and "." not in order


def test_overlay_upper_whiteouts_and_opaque_dirs(tmp_path: Path):
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    os.mknod(upper / "etc" / "passwd", stat.S_IFCHR, 0)
    (upper / "var").mkdir()
    os.setxattr(upper / "var", "trusted.overlay.opaque", b"y")
    os.setxattr(upper / "var", "trusted.overlay.origin", b"\x00junk")
    (upper / "var" / "new").write_text("n")
    data = packed(upper, overlay_upper=True)
    info = members(data)
    assert info["etc/.wh.passwd"].isreg() and info["etc/.wh.passwd"].size == 0
    assert "etc/passwd" not in info
    assert names(data).index("var") + 1 == names(data).index("var/.wh..wh..opq")
    assert not any(k.startswith("SCHILY.xattr.trusted.overlay") for k in info["var"].pax_headers)
    # and back: the layer tar becomes overlay whiteouts again
    dest = tmp_path / "dest"
    dest.mkdir()
    unpack_layer(io.BytesIO(data), dest)
    assert describe(dest, mtimes=False) == describe(upper, mtimes=False) | {
        "var": describe(dest, mtimes=False)["var"]
    }
    assert os.getxattr(dest / "var", "trusted.overlay.opaque") == b"y"


def test_overlay_redirects_are_refused_not_lost(tmp_path: Path):
    from dockerbank.errors import NotSupported

    upper = tmp_path / "upper"
    (upper / "renamed").mkdir(parents=True)
    os.setxattr(upper / "renamed", "trusted.overlay.redirect", b"/original")
    with pytest.raises(NotSupported, match="redirect"):
        packed(upper, overlay_upper=True)


def test_whiteouts_are_plain_devices_without_overlay_upper(tmp_path: Path):
    src = tmp_path / "src"
    src.mkdir()
    os.mknod(src / "gone", stat.S_IFCHR, 0)
    assert members(packed(src))["gone"].ischr()


def test_paths_restricts_to_those_paths_and_their_parents(tree: Path):
    order = names(packed(tree, paths=["/home/user/notes", "bin/"]))
    assert order == ["bin", "bin/tool", "bin/tool-link", "home", "home/user", "home/user/notes"]


def test_sockets_are_skipped(tmp_path: Path):
    import socket

    src = tmp_path / "src"
    src.mkdir()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(src / "sock"))
    try:
        assert names(packed(src)) == []
    finally:
        sock.close()


# --- cp out -----------------------------------------------------------------------------


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    """A container rootfs with symlinks that point out of it if followed on the host."""
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").write_text("container\n")
    (root / "data" / "sub").mkdir(parents=True)
    (root / "data" / "sub" / "f").write_text("f\n")
    os.symlink("/etc", root / "link-etc")
    os.symlink("../../../../../../../../etc", root / "data" / "escape")
    os.symlink("/etc/hostname", root / "hostlink")
    return root


def pack_cp(root: Path, path: str, **kwargs) -> tuple[bytes, object]:
    buffer = io.BytesIO()
    result = pack_path(root, path, buffer, **kwargs)
    return buffer.getvalue(), result


def test_cp_out_of_a_directory(rootfs: Path):
    data, info = pack_cp(rootfs, "/data")
    assert names(data) == ["data", "data/escape", "data/sub", "data/sub/f"]
    assert info.is_dir and info.name == "data"
    assert members(data)["data/escape"].issym()  # archived as a link, not followed


def test_cp_out_resolves_symlinked_parents_inside_the_rootfs(rootfs: Path):
    data, _ = pack_cp(rootfs, "/data/escape/hostname")
    assert members(data)["hostname"].size == len("container\n")
    data, _ = pack_cp(rootfs, "/link-etc/hostname")
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        assert archive.extractfile("hostname").read() == b"container\n"


def test_cp_out_never_reaches_the_host(rootfs: Path):
    with pytest.raises(NotFound):
        pack_cp(rootfs, "/link-etc/passwd")  # the host's /etc/passwd exists; the container's does not
    with pytest.raises(NotFound):
        pack_cp(rootfs, "/data/escape/passwd")


def test_cp_out_symlink_itself_or_followed(rootfs: Path):
    data, info = pack_cp(rootfs, "/hostlink")
    assert members(data)["hostlink"].issym() and info.link_target == "/etc/hostname"
    data, _ = pack_cp(rootfs, "/hostlink", follow_link=True)
    assert names(data) == ["hostname"]  # as docker cp -L names it: after the target
    assert members(data)["hostname"].isreg()


def test_cp_out_contents_only_and_rename(rootfs: Path):
    data, _ = pack_cp(rootfs, "/data/.")
    assert names(data) == [".", "./escape", "./sub", "./sub/f"]
    data, _ = pack_cp(rootfs, "/etc/hostname", name="renamed")
    assert names(data) == ["renamed"]


def test_cp_out_errors(rootfs: Path):
    with pytest.raises(NotFound, match="/nope"):
        pack_cp(rootfs, "/nope")
    with pytest.raises(InvalidArgument, match="not a directory"):
        pack_cp(rootfs, "/etc/hostname/")


def test_stat_in_root(rootfs: Path):
    info = stat_in_root(rootfs, "/link-etc")
    assert info.link_target == "/etc" and stat.S_ISLNK(info.mode)
    assert stat_in_root(rootfs, "/etc").go_mode == (1 << 31) | 0o755


# --- cp in ------------------------------------------------------------------------------


def test_cp_in_through_symlinks_stays_in_the_rootfs(rootfs: Path, tmp_path: Path):
    data = TarBuilder().dir("new").file("new/x", b"x").file("escape/planted", b"p").bytes()
    extract_into(io.BytesIO(data), rootfs, "/data", owner=(0, 0))
    assert (rootfs / "data" / "new" / "x").read_bytes() == b"x"
    assert (rootfs / "etc" / "planted").read_bytes() == b"p"  # data/escape -> rootfs's /etc
    assert not Path("/etc/planted").exists()
    extract_into(io.BytesIO(TarBuilder().file("planted2", b"p").bytes()), rootfs, "/link-etc")
    assert (rootfs / "etc" / "planted2").exists()


def test_cp_in_refuses_dotdot_and_type_changes(rootfs: Path):
    with pytest.raises(HostileArchive):
        extract_into(io.BytesIO(TarBuilder().file("../x").bytes()), rootfs, "/data")
    with pytest.raises(Conflict):
        extract_into(io.BytesIO(TarBuilder().file("sub", b"file over dir").bytes()), rootfs, "/data")
    with pytest.raises(NotFound):
        extract_into(io.BytesIO(TarBuilder().file("x").bytes()), rootfs, "/missing")
    with pytest.raises(InvalidArgument):
        extract_into(io.BytesIO(TarBuilder().file("x").bytes()), rootfs, "/etc/hostname")


def test_cp_in_owner_and_literal_whiteout_names(rootfs: Path):
    builder = TarBuilder()
    info = tarfile.TarInfo("owned")
    info.uid = 4321
    builder.tar.addfile(info)
    builder.file(".wh.literal", b"")
    extract_into(io.BytesIO(builder.bytes()), rootfs, "/data", owner=(0, 0))
    assert os.lstat(rootfs / "data" / "owned").st_uid == 0
    assert (rootfs / "data" / ".wh.literal").is_file()


def test_cp_in_accepts_gzip(rootfs: Path):
    import gzip

    data = gzip.compress(TarBuilder().file("zipped", b"z").bytes())
    extract_into(io.BytesIO(data), rootfs, "/data")
    assert (rootfs / "data" / "zipped").read_bytes() == b"z"
