"""load/save against a real store on disk: both formats, all layer compressions, broken archives."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from dockerbank.errors import CorruptData
from dockerbank.image import archive_formats as fmt
from dockerbank.image.load import load_file, load_stream
from dockerbank.image.save import save
from dockerbank.oci import digest as dg


def layer_tar(files: dict[str, bytes]) -> bytes:
    """A deterministic layer tar holding ``files``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            archive.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def compress(data: bytes, kind: str) -> bytes:
    if kind == "gzip":
        return gzip.compress(data, mtime=0)
    if kind == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


def image_config(layers: list[bytes], cmd=("sh",)) -> bytes:
    return json.dumps({
        "architecture": fmt.imageconfig.host_arch(), "os": "linux", "created": "2026-01-01T00:00:00Z",
        "config": {"Cmd": list(cmd)},
        "rootfs": {"type": "layers", "diff_ids": [dg.of_bytes(layer) for layer in layers]},
        "history": [{"created": "2026-01-01T00:00:00Z", "created_by": f"layer {i}"} for i in range(len(layers))],
    }).encode()


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def docker_archive(path: Path, layers: list[bytes], tags=("app:1",), kinds=None, config=None) -> tuple[Path, str]:
    config = config or image_config(layers)
    kinds = kinds or ["none"] * len(layers)
    members, paths = [], []
    for i, (layer, kind) in enumerate(zip(layers, kinds)):
        paths.append(f"l{i}/layer.tar")
        members.append((paths[-1], compress(layer, kind)))
    config_name = dg.hex_of(dg.of_bytes(config)) + ".json"
    members.append((config_name, config))
    members.append(("manifest.json", json.dumps([{"Config": config_name, "RepoTags": list(tags),
                                                  "Layers": paths}]).encode()))
    return write_tar(path, members), dg.of_bytes(config)


def oci_archive(path: Path, layers: list[bytes], kinds: list[str], name: str | None) -> tuple[Path, str]:
    config = image_config(layers)
    blobs = [(compress(layer, kind), kind) for layer, kind in zip(layers, kinds)]
    media = {"none": "application/vnd.oci.image.layer.v1.tar", "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
             "zstd": "application/vnd.oci.image.layer.v1.tar+zstd"}
    manifest = fmt.oci_manifest(dg.of_bytes(config), len(config),
                                [(media[k], dg.of_bytes(b), len(b)) for b, k in blobs])
    members = [("oci-layout", fmt.OCI_LAYOUT.encode())]
    for data in [b for b, _ in blobs] + [config, manifest]:
        members.append((fmt.blob_path(dg.of_bytes(data)), data))
    members.append(("index.json", fmt.oci_index([(dg.of_bytes(manifest), len(manifest), name)])))
    return write_tar(path, members), dg.of_bytes(config)


LAYERS = [layer_tar({"a.txt": b"alpha" * 1000}), layer_tar({"b.txt": b"beta" * 1000}),
          layer_tar({"c/d.txt": b"gamma"})]


def test_docker_archive_loads_with_every_compression(engine, tmp_path):
    path, image_id = docker_archive(tmp_path / "d.tar", LAYERS, kinds=["none", "gzip", "zstd"])
    [loaded] = load_file(engine.images, path)
    assert loaded.id == image_id and loaded.tags == ["app:1"]
    record = engine.images.resolve("app:1")
    assert engine.images.diff_ids(record.id) == [dg.of_bytes(layer) for layer in LAYERS]
    top = engine.images.layers.diff_dir(record.top_chain)
    assert (top / "c" / "d.txt").read_bytes() == b"gamma"
    kinds = {row["media_type"] for row in engine.db.query("SELECT media_type FROM layer_blobs")}
    assert kinds == {"application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip",
                     "application/vnd.oci.image.layer.v1.tar+zstd"}


def test_oci_archive_with_zstd_loads_and_named(engine, tmp_path):
    path, image_id = oci_archive(tmp_path / "o.tar", LAYERS, ["zstd", "gzip", "none"], "localhost/app:2")
    [loaded] = load_file(engine.images, path)
    assert loaded.id == image_id and loaded.tags == ["localhost/app:2"]


def test_save_load_save_keeps_every_digest(engine, tmp_path, config):
    path, image_id = docker_archive(tmp_path / "d.tar", LAYERS, kinds=["gzip", "zstd", "none"])
    load_file(engine.images, path)
    for archive_format in ("docker-archive", "oci-archive"):
        first = tmp_path / f"first-{archive_format}.tar"
        save(engine.images, ["app:1"], str(first), archive_format=archive_format)
        from dockerbank.config import Config
        from dockerbank.engine import Engine

        other = Engine(Config(root=tmp_path / f"other-{archive_format}", run_root=tmp_path / "run2"))
        try:
            [loaded] = load_file(other.images, first)
            assert loaded.id == image_id
            assert other.images.diff_ids(image_id) == [dg.of_bytes(layer) for layer in LAYERS]
            second = tmp_path / f"second-{archive_format}.tar"
            save(other.images, ["app:1"], str(second), archive_format=archive_format)
        finally:
            other.close()
        if archive_format == "docker-archive":
            assert first.read_bytes() == second.read_bytes()  # deterministic archive
        else:
            # an OCI archive keeps the stored (compressed) blobs: their digests survive too
            assert json.loads(_member(first, "index.json")) == json.loads(_member(second, "index.json"))


def _member(path: Path, name: str) -> bytes:
    with tarfile.open(path) as archive:
        return archive.extractfile(name).read()


def test_save_several_images_and_shared_layers(engine, tmp_path):
    docker_archive(tmp_path / "a.tar", LAYERS[:2], tags=("one:1",))
    docker_archive(tmp_path / "b.tar", LAYERS, tags=("two:1", "two:2"))
    load_file(engine.images, tmp_path / "a.tar")
    load_file(engine.images, tmp_path / "b.tar")
    out = tmp_path / "both.tar"
    save(engine.images, ["one:1", "two"], str(out))
    manifest = json.loads(_member(out, "manifest.json"))
    assert sorted(tuple(m["RepoTags"]) for m in manifest) == [("one:1",), ("two:1", "two:2")]
    with tarfile.open(out) as archive:
        layer_members = [n for n in archive.getnames() if n.endswith("layer.tar")]
    assert len(layer_members) == 3  # the two shared layers are written once


def _assert_nothing_recorded(engine):
    assert engine.images.list() == []


def test_truncated_archive_is_refused_and_records_nothing(engine, tmp_path):
    path, _ = docker_archive(tmp_path / "d.tar", LAYERS)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CorruptData):
        load_file(engine.images, path)
    _assert_nothing_recorded(engine)


def test_layer_digest_mismatch_is_refused(engine, tmp_path):
    config = image_config(LAYERS)
    tampered = [LAYERS[0], LAYERS[1], layer_tar({"c/d.txt": b"GAMMA"})]
    path, _ = docker_archive(tmp_path / "d.tar", tampered, config=config)
    with pytest.raises(CorruptData, match="invalid archive"):
        load_file(engine.images, path)
    _assert_nothing_recorded(engine)
    leftovers = [p for p in (engine.config.layers_dir).iterdir() if p.name.startswith(".tmp-")]
    assert leftovers == []
    assert os.listdir(engine.config.tmp_dir) == []


def test_oci_blob_tampered_is_refused(engine, tmp_path):
    path, _ = oci_archive(tmp_path / "o.tar", LAYERS, ["gzip", "gzip", "gzip"], "app:1")
    with tarfile.open(path) as archive:
        members = [(m.name, archive.extractfile(m).read()) for m in archive.getmembers()]
    gz_name = next(n for n, d in members if d.startswith(b"\x1f\x8b"))
    members = [(n, gzip.compress(b"x" * 100) if n == gz_name else d) for n, d in members]
    write_tar(path, members)
    with pytest.raises(CorruptData, match="invalid archive: layer blobs/sha256/"):
        load_file(engine.images, path)
    _assert_nothing_recorded(engine)


def test_not_an_archive(engine, tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(b"hello world" * 100)
    with pytest.raises(CorruptData):
        load_file(engine.images, junk)
    empty = write_tar(tmp_path / "empty.tar", [("x", b"y")])
    with pytest.raises(CorruptData, match="neither manifest.json"):
        load_file(engine.images, empty)


def test_compressed_archive_from_stream(engine, tmp_path):
    path, image_id = docker_archive(tmp_path / "d.tar", LAYERS)
    [loaded] = load_stream(engine.images, io.BytesIO(gzip.compress(path.read_bytes())))
    assert loaded.id == image_id
    with pytest.raises(CorruptData, match="stdin is empty"):
        load_stream(engine.images, io.BytesIO(b""))


def test_podman_style_symlinked_layers(engine, tmp_path):
    config = image_config(LAYERS[:1])
    diff_hex = dg.hex_of(dg.of_bytes(LAYERS[0]))
    path = tmp_path / "p.tar"
    with tarfile.open(path, "w") as archive:
        for name, data in ((f"{diff_hex}.tar", LAYERS[0]), ("c.json", config)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("v1id/layer.tar")
        link.type = tarfile.SYMTYPE
        link.linkname = f"../{diff_hex}.tar"
        archive.addfile(link)
        manifest = json.dumps([{"Config": "c.json", "RepoTags": ["localhost/p:1"], "Layers": ["v1id/layer.tar"]}])
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        archive.addfile(info, io.BytesIO(manifest.encode()))
    [loaded] = load_file(engine.images, path)
    assert loaded.tags == ["localhost/p:1"]


def test_hostile_layer_in_archive_is_refused_as_hostile(engine, tmp_path):
    from dockerbank.errors import HostileArchive

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as archive:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"bad"))
    hostile = buf.getvalue()
    path, _ = docker_archive(tmp_path / "h.tar", [LAYERS[0], hostile])
    with pytest.raises(HostileArchive, match="invalid archive: layer l1/layer.tar"):
        load_file(engine.images, path)
    _assert_nothing_recorded(engine)
    assert not (tmp_path / "escape.txt").exists()
    assert not (engine.config.layers_dir / "escape.txt").exists()


def test_rmi_keeps_layers_another_image_shares(engine, tmp_path):
    from dockerbank.image.remove import remove_image

    docker_archive(tmp_path / "a.tar", LAYERS[:2], tags=("one:1",))
    docker_archive(tmp_path / "b.tar", LAYERS, tags=("two:1",))
    load_file(engine.images, tmp_path / "a.tar")
    load_file(engine.images, tmp_path / "b.tar")
    report = remove_image(engine.images, "two:1")
    deleted_layers = [value for kind, value in report.items if kind == "Deleted"][1:]
    chains = dg.chain_ids([dg.of_bytes(layer) for layer in LAYERS])
    assert deleted_layers == [chains[2]]  # only the layer "two" alone had
    assert sorted(engine.images.layers.dir.iterdir()) == sorted(
        engine.images.layers.dir / dg.hex_of(c) for c in chains[:2])
    save(engine.images, ["one:1"], str(tmp_path / "one.tar"))  # its blobs are all still there
    assert not engine.images.blobs.has(dg.of_bytes(LAYERS[2]))
