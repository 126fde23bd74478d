"""Layer tarballs and image archives from strangers: the unpacker and ``load`` raise Dockerbank's own
errors or succeed, and nothing is ever written outside the destination."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import pytest
from fuzzing import only_our_errors
from hypothesis import given
from hypothesis import strategies as st

from hostile_corpus import snapshot

pytestmark = pytest.mark.integration  # writes real files (devices, owners, xattrs) as root

NAME_PIECES = ["a", "b", "..", ".", "", "/", "etc", "passwd", ".wh.a", ".wh..wh..opq", "ü", "x" * 120, "\\", "\x00",
               "link", "dir", "../" * 8 + "outside", "/proc/self", "//", " "]
names = st.lists(st.sampled_from(NAME_PIECES), min_size=1, max_size=5).map("/".join)
KINDS = [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE,
         tarfile.FIFOTYPE, b"Z", tarfile.CONTTYPE, tarfile.GNUTYPE_SPARSE]
members = st.tuples(names, st.sampled_from(KINDS), st.one_of(names, st.text(max_size=10)),
                    st.integers(0, 0o7777), st.binary(max_size=64), st.integers(0, 70000),
                    st.dictionaries(st.sampled_from(["SCHILY.xattr.user.x", "SCHILY.xattr.security.capability",
                                                     "path", "linkpath", "uid", "size", "mtime", "LIBARCHIVE.x"]),
                                    st.text(max_size=12), max_size=2))


def _tar(entries) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, link, mode, data, uid, pax in entries:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, uid, 1_600_000_000
            info.linkname = link if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
            info.pax_headers = pax
            if kind in (tarfile.REGTYPE, tarfile.CONTTYPE):
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                try:
                    tar.addfile(info)
                except (ValueError, tarfile.TarError):
                    continue  # a header Python's tarfile will not even write
    return buffer.getvalue()


def _mangle(data: bytes, cuts: list[int]) -> bytes:
    """Flip bytes and truncate: the headers' checksums and sizes lie."""
    out = bytearray(data)
    for cut in cuts:
        if out:
            out[cut % len(out)] ^= 0xFF
    return bytes(out)


@given(st.lists(members, max_size=6), st.lists(st.integers(0, 1 << 20), max_size=3), st.booleans())
def test_layer_unpack(entries, cuts, truncate):
    from dockerbank.image.unpack import unpack_layer

    data = _mangle(_tar(entries), cuts)
    if truncate:
        data = data[: len(data) // 2]
    with tempfile.TemporaryDirectory(prefix="fuzz-layer-") as work:
        dest, outside = Path(work) / "dest", Path(work) / "outside"
        dest.mkdir()
        outside.mkdir()
        (outside / "victim").write_text("original\n")
        before = snapshot(outside)
        only_our_errors("layer tar", unpack_layer, io.BytesIO(data), dest)
        assert snapshot(outside) == before, "the unpacker wrote outside its destination"
        assert not os.path.exists("/outside") and not os.path.exists(Path(work).parent / "outside")


json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
                           lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(
                               st.sampled_from(["Config", "RepoTags", "Layers", "manifests", "mediaType", "digest",
                                                "size", "schemaVersion", "annotations", "rootfs", "diff_ids",
                                                "config", "layers", "org.opencontainers.image.ref.name"]),
                               inner, max_size=4)), max_leaves=10)
ARCHIVE_FILES = ["manifest.json", "index.json", "oci-layout", "repositories", "blobs/sha256/" + "a" * 64,
                 "config.json", "layer.tar", "../evil"]


@given(st.dictionaries(st.sampled_from(ARCHIVE_FILES), st.one_of(json_values.map(lambda v: json.dumps(v).encode()),
                                                                  st.binary(max_size=40)), max_size=4))
def test_image_archive_load(files):
    from dockerbank.config import Config
    from dockerbank.engine import Engine
    from dockerbank.image.load import load_stream

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    work = tempfile.mkdtemp(prefix="fuzz-load-")
    engine = Engine(Config(root=Path(work) / "root", run_root=Path(work) / "run"))
    try:
        buffer.seek(0)
        only_our_errors("image archive", load_stream, engine.images, buffer)
        assert not os.path.exists(Path(work) / "evil") and not os.path.exists(Path(work) / "root" / "evil")
    finally:
        engine.close()
        shutil.rmtree(work, ignore_errors=True)
