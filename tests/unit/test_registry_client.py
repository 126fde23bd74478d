"""Pure parts of the registry client: auth headers, credentials, platforms, manifests, policy."""

from __future__ import annotations

import base64
import gzip
import io
import json

import pytest

from dockerbank.errors import CorruptData, InvalidArgument, NotFound, PolicyRefused
from dockerbank.registry import mediatypes as mt
from dockerbank.registry import policy
from dockerbank.registry.client.auth import CredentialStore, parse_www_authenticate
from dockerbank.registry.client.pull import Platform, parse_platform, select_manifest
from dockerbank.registry.client.push import Blob, GzipReader, build_manifest
from dockerbank.registry.registries import RegistriesConfig, is_loopback


def test_parse_bearer_challenge_with_commas_in_scope():
    header = ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
              'scope="repository:samalba/my-app:pull,push"')
    [challenge] = parse_www_authenticate(header)
    assert challenge.scheme == "bearer"
    assert challenge.realm == "https://auth.docker.io/token"
    assert challenge.params["service"] == "registry.docker.io"
    assert challenge.params["scope"] == "repository:samalba/my-app:pull,push"


def test_parse_basic_challenge_and_escapes():
    [challenge] = parse_www_authenticate('Basic realm="My \\"Registry\\""')
    assert challenge.scheme == "basic" and challenge.realm == 'My "Registry"'
    assert parse_www_authenticate("") == []


def test_credential_store_roundtrip_keeps_other_keys(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"credsStore": "", "proxies": {"x": 1}}))
    store = CredentialStore(path)
    store.store("127.0.0.1:5000", "alice", "pa:ss")
    store.store("docker.io", "bob", "pw")
    data = json.loads(path.read_text())
    assert data["proxies"] == {"x": 1}
    assert base64.b64decode(data["auths"]["127.0.0.1:5000"]["auth"]) == b"alice:pa:ss"
    assert "https://index.docker.io/v1/" in data["auths"]
    assert store.get("127.0.0.1:5000") == ("alice", "pa:ss")
    assert store.get("docker.io") == ("bob", "pw")
    assert path.stat().st_mode & 0o077 == 0
    assert store.erase("127.0.0.1:5000") and not store.erase("127.0.0.1:5000")
    assert store.get("127.0.0.1:5000") is None


def test_credential_store_reads_docker_written_keys(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {"https://reg.example:5000": {"auth": base64.b64encode(b"u:p").decode()}}}))
    assert CredentialStore(path).get("reg.example:5000") == ("u", "p")
    path.write_text("{broken")
    with pytest.raises(CorruptData):
        CredentialStore(path).get("x")


def test_platforms():
    assert parse_platform("linux/arm64/v8") == Platform("linux", "arm64", "v8")
    assert parse_platform("amd64") == Platform("linux", "amd64")
    assert parse_platform(None).os == "linux"
    with pytest.raises(InvalidArgument):
        parse_platform("linux//")


def index_of(*platforms: dict) -> dict:
    return {"manifests": [{"digest": f"sha256:{i:064x}", "platform": p} for i, p in enumerate(platforms)]}


def test_select_manifest_by_platform():
    index = index_of({"os": "linux", "architecture": "arm", "variant": "v7"},
                     {"os": "linux", "architecture": "amd64"},
                     {"os": "linux", "architecture": "arm64", "variant": "v8"},
                     {"os": "unknown", "architecture": "unknown"})
    assert select_manifest(index, Platform("linux", "amd64"))["digest"].endswith("1")
    assert select_manifest(index, Platform("linux", "arm64"))["digest"].endswith("2")
    assert select_manifest(index, Platform("linux", "arm", "v7"))["digest"].endswith("0")
    with pytest.raises(NotFound) as info:
        select_manifest(index, Platform("linux", "s390x"))
    assert "linux/s390x" in str(info.value)
    with pytest.raises(NotFound):
        select_manifest(index, Platform("linux", "arm", "v6"))


def test_attestation_manifests_are_skipped():
    index = index_of({"os": "linux", "architecture": "amd64"}, {"os": "linux", "architecture": "amd64"})
    index["manifests"][0]["annotations"] = {"vnd.docker.reference.type": "attestation-manifest"}
    assert select_manifest(index, Platform("linux", "amd64"))["digest"].endswith("1")


def test_parse_manifest_media_types():
    _doc, media_type = mt.parse_manifest(b'{"schemaVersion":2,"manifests":[]}')
    assert media_type == mt.OCI_INDEX
    _, media_type = mt.parse_manifest(b'{"schemaVersion":2,"config":{}}', mt.DOCKER_MANIFEST)
    assert media_type == mt.DOCKER_MANIFEST
    with pytest.raises(CorruptData):
        mt.parse_manifest(b"[1]")
    with pytest.raises(CorruptData):
        mt.parse_manifest(json.dumps({"mediaType": mt.OCI_INDEX}).encode(), mt.DOCKER_MANIFEST)


def test_build_manifest_docker_for_gzip_and_oci_for_zstd():
    config = b'{"os":"linux"}'
    gz = Blob("sha256:" + "a" * 64, 10, "gzip")
    zst = Blob("sha256:" + "b" * 64, 20, "zstd")
    body, media_type = build_manifest(config, [gz])
    doc = json.loads(body)
    assert media_type == mt.DOCKER_MANIFEST and doc["config"]["mediaType"] == mt.DOCKER_CONFIG
    assert doc["layers"][0]["mediaType"] == mt.DOCKER_LAYER_GZIP
    body, media_type = build_manifest(config, [gz, zst])
    doc = json.loads(body)
    assert media_type == mt.OCI_MANIFEST
    assert [layer["mediaType"] for layer in doc["layers"]] == [
        "application/vnd.oci.image.layer.v1.tar+gzip", "application/vnd.oci.image.layer.v1.tar+zstd"]


def test_gzip_reader_is_deterministic_and_valid():
    data = b"tar bytes " * 300000
    first = GzipReader(io.BytesIO(data)).read(-1)
    out = bytearray()
    reader = GzipReader(io.BytesIO(data))
    while chunk := reader.read(65536):
        out += chunk
    assert gzip.decompress(bytes(out)) == data
    assert bytes(out).startswith(first[:10])  # same header: mtime 0, no file name


def test_registries_config(tmp_path):
    (tmp_path / "registries.json").write_text(json.dumps({"insecure": ["lan:5000"], "private": ["reg.klinik.de"]}))
    config = RegistriesConfig.load(tmp_path, ("other:443",))
    assert config.is_insecure("lan:5000") and config.is_insecure("other:443")
    assert config.is_insecure("127.0.0.5:5000") and config.is_insecure("localhost:5000") and config.is_insecure("[::1]:5000")
    assert not config.is_insecure("docker.io") and not config.is_insecure("10.0.0.1:5000")
    assert config.is_private("reg.klinik.de:5000") and not config.is_private("docker.io")
    assert is_loopback("localhost") and not is_loopback("example.com")
    assert RegistriesConfig.load(tmp_path / "absent").private == frozenset()


def labelled(value: str | None) -> dict:
    labels = {policy.LABEL: value} if value is not None else {"other": "x"}
    return {"config": {"Labels": labels}}


def test_policy_refuses_labelled_image_to_public_registry():
    registries = RegistriesConfig(private=frozenset({"private.lan:5000"}))
    with pytest.raises(PolicyRefused) as info:
        policy.check_push(labelled("false"), "docker.io", registries, "redcap:14")
    assert policy.LABEL in str(info.value) and "redcap:14" in str(info.value) and "docker.io" in str(info.value)
    policy.check_push(labelled("false"), "private.lan:5000", registries, "redcap:14")
    policy.check_push(labelled("true"), "docker.io", registries, "x")
    policy.check_push(labelled(None), "docker.io", registries, "x")
    policy.check_push({}, "docker.io", registries, "x")
    assert not policy.is_redistributable(labelled("FALSE"))
