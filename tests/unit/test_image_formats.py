"""Pure parts of the image archive formats: manifest/index parsing, names, deterministic writers."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from dockerbank.errors import CorruptData, InvalidArgument
from dockerbank.image import archive_formats as fmt
from dockerbank.image.tarindex import TarIndex, normalise
from dockerbank.oci import digest as dg


def _blobs(*docs) -> dict[str, bytes]:
    out = {}
    for doc in docs:
        data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        out[fmt.blob_path(dg.of_bytes(data))] = data
    return out


def _reader(files: dict[str, bytes]):
    def read(path: str) -> bytes:
        if path not in files:
            raise CorruptData(f"{path} not found")
        return files[path]

    return read


def test_docker_manifest_parsed():
    data = json.dumps([{"Config": "abc.json", "RepoTags": ["busybox:latest"], "Layers": ["x/layer.tar"]}]).encode()
    [image] = fmt.parse_docker_manifest(data)
    assert image.config_path == "abc.json"
    assert image.tags == ["busybox:latest"]
    assert [layer.path for layer in image.layers] == ["x/layer.tar"]


@pytest.mark.parametrize("data", [b"not json", b"{}", b'[{"Layers": []}]', b'[{"Config": "a", "Layers": "x"}]'])
def test_docker_manifest_refuses_garbage(data):
    with pytest.raises(CorruptData):
        fmt.parse_docker_manifest(data)


def test_docker_manifest_refuses_bad_tag_before_storing():
    data = json.dumps([{"Config": "a.json", "RepoTags": ["UPPER:case"], "Layers": []}]).encode()
    with pytest.raises(InvalidArgument):
        fmt.parse_docker_manifest(data)


def _image_blobs(arch="amd64"):
    config = {"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    config_bytes = json.dumps(config).encode()
    manifest = {"schemaVersion": 2, "mediaType": fmt.MEDIA_OCI_MANIFEST,
                "config": {"mediaType": fmt.MEDIA_OCI_CONFIG, "digest": dg.of_bytes(config_bytes),
                           "size": len(config_bytes)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": "sha256:" + "a" * 64, "size": 3}]}
    manifest_bytes = json.dumps(manifest).encode()
    return config_bytes, manifest_bytes


def test_oci_index_with_name_and_nested_index():
    config_bytes, manifest_bytes = _image_blobs()
    other_config, other_manifest = _image_blobs("s390x" if fmt.imageconfig.host_arch() != "s390x" else "arm64")
    nested = {"schemaVersion": 2, "mediaType": fmt.MEDIA_OCI_INDEX, "manifests": [
        {"mediaType": fmt.MEDIA_OCI_MANIFEST, "digest": dg.of_bytes(other_manifest), "size": len(other_manifest),
         "platform": {"os": "linux", "architecture": "s390x" if fmt.imageconfig.host_arch() != "s390x" else "arm64"}},
        {"mediaType": fmt.MEDIA_OCI_MANIFEST, "digest": dg.of_bytes(manifest_bytes), "size": len(manifest_bytes),
         "platform": {"os": "linux", "architecture": fmt.imageconfig.host_arch()}},
    ]}
    nested_bytes = json.dumps(nested).encode()
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": fmt.MEDIA_OCI_INDEX, "digest": dg.of_bytes(nested_bytes), "size": len(nested_bytes),
         "annotations": {fmt.ANNOTATION_REF_NAME: "localhost/app:1.0"}},
    ]}
    files = {"index.json": json.dumps(index).encode(),
             **_blobs(config_bytes, manifest_bytes, other_config, other_manifest, nested_bytes)}
    [image] = fmt.parse_oci_index(_reader(files))
    assert image.config_digest == dg.of_bytes(config_bytes)
    assert image.tags == ["localhost/app:1.0"]
    assert image.layers[0].blob_digest == "sha256:" + "a" * 64
    assert image.layers[0].path == "blobs/sha256/" + "a" * 64


def test_oci_bare_tag_annotation_loads_untagged_and_containerd_name_wins():
    config_bytes, manifest_bytes = _image_blobs()
    descriptor = {"mediaType": fmt.MEDIA_OCI_MANIFEST, "digest": dg.of_bytes(manifest_bytes),
                  "size": len(manifest_bytes)}
    bare = dict(descriptor, annotations={fmt.ANNOTATION_REF_NAME: "latest"})
    named = dict(descriptor, annotations={fmt.ANNOTATION_REF_NAME: "latest",
                                          fmt.ANNOTATION_CONTAINERD_NAME: "docker.io/library/busybox:1"})
    for entry, tags in ((bare, []), (named, ["docker.io/library/busybox:1"])):
        files = {"index.json": json.dumps({"schemaVersion": 2, "manifests": [entry]}).encode(),
                 **_blobs(config_bytes, manifest_bytes)}
        [image] = fmt.parse_oci_index(_reader(files))
        assert image.tags == tags


def test_oci_blob_digest_mismatch_is_corrupt():
    config_bytes, manifest_bytes = _image_blobs()
    files = _blobs(config_bytes, manifest_bytes)
    files[fmt.blob_path(dg.of_bytes(manifest_bytes))] = manifest_bytes + b" "
    files["index.json"] = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": fmt.MEDIA_OCI_MANIFEST, "digest": dg.of_bytes(manifest_bytes), "size": 1}]}).encode()
    with pytest.raises(CorruptData, match="does not match"):
        fmt.parse_oci_index(_reader(files))


def test_writers_are_deterministic():
    layers = [("application/vnd.oci.image.layer.v1.tar", "sha256:" + "b" * 64, 10)]
    one = fmt.oci_manifest("sha256:" + "c" * 64, 5, layers)
    assert one == fmt.oci_manifest("sha256:" + "c" * 64, 5, layers)
    index = json.loads(fmt.oci_index([(dg.of_bytes(one), len(one), "docker.io/library/busybox:latest")]))
    annotations = index["manifests"][0]["annotations"]
    assert annotations[fmt.ANNOTATION_REF_NAME] == "docker.io/library/busybox:latest"
    manifest = json.loads(fmt.docker_manifest([("c.json", ["busybox:latest"], ["d/layer.tar"])]))
    assert manifest == [{"Config": "c.json", "RepoTags": ["busybox:latest"], "Layers": ["d/layer.tar"]}]
    assert json.loads(fmt.docker_manifest([("c.json", [], [])]))[0]["RepoTags"] is None
    repos = json.loads(fmt.docker_repositories({"busybox:latest": "d", "team/app:1": "e"}))
    assert repos == {"busybox": {"latest": "d"}, "team/app": {"1": "e"}}


@pytest.mark.parametrize("name,expected", [
    ("./manifest.json", "manifest.json"), ("a//b/", "a/b"), ("/abs/x", "abs/x"), ("../x", None),
    ("a/../../x", None), (".", None), ("a/./b/../c", "a/c"),
])
def test_normalise(name, expected):
    assert normalise(name) == expected


def test_tar_index_follows_symlinks_inside_and_flags_truncation(tmp_path):
    path = tmp_path / "a.tar"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as archive:
        info = tarfile.TarInfo("abc.tar")
        info.size = 5
        archive.addfile(info, io.BytesIO(b"hello"))
        link = tarfile.TarInfo("dir/layer.tar")
        link.type = tarfile.SYMTYPE
        link.linkname = "../abc.tar"
        archive.addfile(link)
        escape = tarfile.TarInfo("dir/evil")
        escape.type = tarfile.SYMTYPE
        escape.linkname = "../../etc/passwd"
        archive.addfile(escape)
    path.write_bytes(buf.getvalue())
    index = TarIndex(path)
    assert index.read("dir/layer.tar") == b"hello"
    assert not index.has("dir/evil")
    with index.open("abc.tar") as reader:
        assert reader.read() == b"hello"
    path.write_bytes(buf.getvalue()[:520])  # header + a few bytes of the body
    with pytest.raises(CorruptData):
        TarIndex(path)
