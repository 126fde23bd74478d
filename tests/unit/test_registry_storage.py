"""Registry server storage and pure helpers: manifests, tags, referrers, uploads, GC, read-only."""

from __future__ import annotations

import hashlib
import json

import pytest

from dockerbank.registry import mediatypes as mt
from dockerbank.registry.server.app import paginate
from dockerbank.registry.server.auth import Htpasswd, make_htpasswd_line, parse_basic
from dockerbank.registry.server.storage import RegistryError, RegistryStorage


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_manifest(config: bytes, layer: bytes, **extra) -> bytes:
    doc = {
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest_of(layer),
                    "size": len(layer)}],
        **extra,
    }
    return json.dumps(doc).encode()


@pytest.fixture
def storage(tmp_path):
    return RegistryStorage(tmp_path / "reg")


def push_image(storage: RegistryStorage, name: str, tag: str, layer: bytes = b"layer", **extra) -> str:
    config = b'{"architecture":"amd64","os":"linux"}'
    storage.put_blob_bytes(name, config, digest_of(config))
    storage.put_blob_bytes(name, layer, digest_of(layer))
    digest, _ = storage.put_manifest(name, tag, image_manifest(config, layer, **extra), mt.OCI_MANIFEST)
    return digest


def test_manifest_by_tag_and_digest(storage):
    digest = push_image(storage, "team/app", "v1")
    path, media_type, found = storage.get_manifest("team/app", "v1")
    assert found == digest and media_type == mt.OCI_MANIFEST
    assert digest_of(path.read_bytes()) == digest
    assert storage.get_manifest("team/app", digest)[2] == digest
    assert storage.tags("team/app") == ["v1"]
    assert storage.repositories() == ["team/app"]


def test_manifest_with_missing_blob_is_refused_and_stores_nothing(storage):
    body = image_manifest(b"{}", b"nope")
    with pytest.raises(RegistryError) as info:
        storage.put_manifest("app", "v1", body, mt.OCI_MANIFEST)
    assert info.value.code == "MANIFEST_BLOB_UNKNOWN" and info.value.status == 400
    assert not storage.has_blob(digest_of(body))


def test_manifest_digest_mismatch_is_refused(storage):
    push_image(storage, "app", "v1")
    body = image_manifest(b'{"architecture":"amd64","os":"linux"}', b"layer")
    with pytest.raises(RegistryError) as info:
        storage.put_manifest("app", "sha256:" + "0" * 64, body, mt.OCI_MANIFEST)
    assert info.value.code == "DIGEST_INVALID"


def test_blob_digest_mismatch_is_refused(storage):
    with pytest.raises(RegistryError) as info:
        storage.put_blob_bytes("app", b"data", digest_of(b"other"))
    assert info.value.code == "DIGEST_INVALID"
    assert not storage.has_blob(digest_of(b"data")) and not storage.has_blob(digest_of(b"other"))


def test_invalid_names_and_digests(storage):
    for name in ("UPPER", "a//b", "../etc", "a/../b", "-x"):
        with pytest.raises(RegistryError) as info:
            storage.tags(name)
        assert info.value.code == "NAME_INVALID"
    with pytest.raises(RegistryError) as info:
        storage.get_manifest("app", "sha256:xyz")
    assert info.value.code in ("DIGEST_INVALID", "NAME_UNKNOWN")


def test_upload_session_and_verification(storage):
    upload = storage.start_upload("app")
    with storage.open_upload(upload) as handle:
        for chunk in (b"hello ", b"world"):
            handle.write(chunk)
            storage.uploaded(upload, chunk)
    assert upload.size == 11
    digest = storage.finish_upload(upload, digest_of(b"hello world"))
    assert storage.blob_in_repo("app", digest).read_bytes() == b"hello world"
    bad = storage.start_upload("app")
    with storage.open_upload(bad) as handle:
        handle.write(b"x")
        storage.uploaded(bad, b"x")
    with pytest.raises(RegistryError) as info:
        storage.finish_upload(bad, digest_of(b"y"))
    assert info.value.code == "DIGEST_INVALID"
    assert not storage.has_blob(digest_of(b"x"))


def test_upload_survives_restart_of_the_server(storage, tmp_path):
    upload = storage.start_upload("app")
    with storage.open_upload(upload) as handle:
        handle.write(b"abc")
        storage.uploaded(upload, b"abc")
    again = RegistryStorage(tmp_path / "reg")  # no in-memory hash state: recomputed from disk
    resumed = again.get_upload("app", upload.id)
    assert resumed.size == 3
    assert again.finish_upload(resumed, digest_of(b"abc")) == digest_of(b"abc")
    with pytest.raises(RegistryError) as info:
        again.get_upload("other", upload.id)
    assert info.value.code == "BLOB_UPLOAD_UNKNOWN"


def test_cross_repository_mount(storage):
    storage.put_blob_bytes("a", b"shared", digest_of(b"shared"))
    assert storage.mount_blob("b", digest_of(b"shared"), "a")
    assert storage.blob_in_repo("b", digest_of(b"shared"))
    assert not storage.mount_blob("c", digest_of(b"absent"), "a")


def test_referrers_from_subject_with_artifact_type_filter(storage):
    subject = push_image(storage, "app", "v1")
    sbom = push_image(storage, "app", "sbom", layer=b"sbom",
                      artifactType="application/spdx+json", annotations={"k": "v"},
                      subject={"mediaType": mt.OCI_MANIFEST, "digest": subject, "size": 1})
    sig = push_image(storage, "app", "sig", layer=b"sig",
                     subject={"mediaType": mt.OCI_MANIFEST, "digest": subject, "size": 1})
    found = storage.referrers("app", subject)
    assert {d["digest"] for d in found} == {sbom, sig}
    only = storage.referrers("app", subject, "application/spdx+json")
    assert [d["digest"] for d in only] == [sbom] and only[0]["annotations"] == {"k": "v"}
    sig_entry = next(d for d in found if d["digest"] == sig)
    assert sig_entry["artifactType"] == mt.OCI_CONFIG  # falls back to the config's media type
    storage.delete_manifest("app", sbom)
    assert [d["digest"] for d in storage.referrers("app", subject)] == [sig]


def test_delete_tag_and_manifest(storage):
    digest = push_image(storage, "app", "v1")
    storage.put_manifest("app", "v2", storage.get_manifest("app", digest)[0].read_bytes(), mt.OCI_MANIFEST)
    storage.delete_manifest("app", "v1")
    assert storage.tags("app") == ["v2"]
    storage.delete_manifest("app", digest)
    assert storage.tags("app") == []
    with pytest.raises(RegistryError) as info:
        storage.get_manifest("app", digest)
    assert info.value.code == "MANIFEST_UNKNOWN"


def test_gc_removes_only_unreferenced_blobs(storage):
    keep = push_image(storage, "app", "v1", layer=b"kept layer")
    gone = push_image(storage, "app", "v2", layer=b"dropped layer")
    storage.put_blob_bytes("app", b"orphan", digest_of(b"orphan"))
    storage.delete_manifest("app", gone)
    dry = storage.gc(dry_run=True)
    assert set(dry.deleted) == {gone, digest_of(b"dropped layer"), digest_of(b"orphan")}
    assert storage.has_blob(digest_of(b"orphan"))
    report = storage.gc()
    assert set(report.deleted) == set(dry.deleted)
    assert not storage.has_blob(digest_of(b"orphan")) and not storage.has_blob(gone)
    assert storage.has_blob(keep) and storage.has_blob(digest_of(b"kept layer"))
    assert storage.get_manifest("app", "v1")[2] == keep


def test_gc_finishes_what_a_killed_gc_left(storage):
    """A gc killed after sweeping a blob and before its link leaves a link to nothing: the next
    gc removes it (it used to drop only the links of the blobs it swept itself)."""
    gone = push_image(storage, "app", "v2", layer=b"dropped layer")
    storage.delete_manifest("app", gone)
    storage.blob_path(digest_of(b"dropped layer")).unlink()   # the killed run's sweep
    layers = storage.repos_dir / "app" / "_layers"
    assert (layers / digest_of(b"dropped layer").split(":")[1]).exists()
    storage.gc()
    assert not (layers / digest_of(b"dropped layer").split(":")[1]).exists()
    with pytest.raises(RegistryError):
        storage.blob_in_repo("app", digest_of(b"dropped layer"))


def test_gc_removes_stale_temporary_files(storage):
    (storage.tmp_dir / "w-killed").write_bytes(b"half")
    assert storage.gc(upload_max_age=3600).uploads_removed == 0   # young: a write in progress
    assert storage.gc(upload_max_age=-1).uploads_removed == 1
    assert not (storage.tmp_dir / "w-killed").exists()


def test_upload_killed_after_its_data_moved_is_unknown(storage):
    """A server killed between the rename of a finished upload and the session's removal: after a
    restart the session is unknown (404), not a 500 from its missing data file."""
    upload = storage.start_upload("app")
    with storage.open_upload(upload) as handle:
        handle.write(b"data")
    (storage.uploads_dir / upload.id / "data").unlink()
    restarted = RegistryStorage(storage.root)
    with pytest.raises(RegistryError) as info:
        restarted.get_upload("app", upload.id)
    assert info.value.code == "BLOB_UPLOAD_UNKNOWN"


def test_read_only_refuses_writes(tmp_path):
    RegistryStorage(tmp_path / "reg")
    ro = RegistryStorage(tmp_path / "reg", read_only=True)
    with pytest.raises(RegistryError) as info:
        ro.start_upload("app")
    assert info.value.code == "UNSUPPORTED" and info.value.status == 405


def test_index_needs_its_children(storage):
    child = push_image(storage, "app", "amd64")
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        {"mediaType": mt.OCI_MANIFEST, "digest": child, "size": 1, "platform": {"os": "linux", "architecture": "amd64"}},
    ]}
    digest, _ = storage.put_manifest("app", "multi", json.dumps(index).encode(), mt.OCI_INDEX)
    assert storage.get_manifest("app", "multi")[1] == mt.OCI_INDEX
    index["manifests"][0]["digest"] = "sha256:" + "1" * 64
    with pytest.raises(RegistryError) as info:
        storage.put_manifest("app", "broken", json.dumps(index).encode(), mt.OCI_INDEX)
    assert info.value.code == "MANIFEST_BLOB_UNKNOWN"
    assert storage.gc().deleted == []  # children of an index are marked
    assert digest


def test_paginate():
    items = ["a", "b", "c", "d"]
    assert paginate(items, None, None, "/x") == (items, {})
    page, headers = paginate(items, "2", None, "/v2/r/tags/list")
    assert page == ["a", "b"] and headers["Link"] == '</v2/r/tags/list?n=2&last=b>; rel="next"'
    page, headers = paginate(items, "2", "b", "/x")
    assert page == ["c", "d"] and headers == {}
    assert paginate(items, "0", None, "/x") == ([], {})
    with pytest.raises(RegistryError) as info:
        paginate(items, "-1", None, "/x")
    assert info.value.code == "PAGINATION_NUMBER_INVALID"


def test_htpasswd_bcrypt(tmp_path):
    path = tmp_path / "htpasswd"
    path.write_text(make_htpasswd_line("alice", "s3cret", rounds=4) + "\n")
    auth = Htpasswd(path)
    import base64

    good = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    bad = "Basic " + base64.b64encode(b"alice:wrong").decode()
    assert auth.check(good) == "alice" and auth.check(good) == "alice"  # second time from the cache
    assert auth.check(bad) is None and auth.check(None) is None and auth.check("Bearer x") is None
    assert parse_basic("Basic !!!") is None
