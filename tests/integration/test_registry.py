"""Dockerbank's registry client against Dockerbank's registry server, in-process on 127.0.0.1.

Real HTTP over loopback, real stores on disk; nothing is mocked. The failure tests use a
tampered storage or a small HTTP server that breaks off in the middle of a blob.
"""

from __future__ import annotations

import http.client
import http.server
import json
import subprocess
import threading
from pathlib import Path
from typing import ClassVar

import pytest

from dockerbank.engine import Engine
from dockerbank.errors import CorruptData, NotFound, Offline, PolicyRefused
from dockerbank.image.importer import import_rootfs
from dockerbank.registry import mediatypes as mt
from dockerbank.registry import policy
from dockerbank.registry.client.progress import Progress
from dockerbank.registry.client.transport import RegistryAuthError
from dockerbank.registry.server.app import ssl_context, start_in_thread
from dockerbank.registry.server.auth import make_htpasswd_line
from dockerbank.registry.server.storage import RegistryStorage


class Recorder(Progress):
    """Keeps the status lines a pull or push reports."""

    def __init__(self):
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)

    def status(self, item: str, text: str) -> None:
        self.lines.append(f"{item}: {text}")


@pytest.fixture(autouse=True)
def docker_config(tmp_path, monkeypatch):
    """Credentials go to the test's own docker config, never the user's."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    return tmp_path / "docker-config" / "config.json"


def image_ids(engine: Engine) -> list[str]:
    return [image.id for image in engine.images.list()]


def test_push_then_pull_into_fresh_root_gives_identical_image(engine, other_engine, busybox, server):
    name = f"{server.address}/team/busybox:1.0"
    engine.images.tag(busybox.id, name)
    [pushed] = engine.registry.push(name)
    assert engine.images.get(busybox.id).repo_digests == [f"{server.address}/team/busybox@{pushed.digest}"]
    progress = Recorder()
    [pulled] = other_engine.registry.pull(name, progress=progress)
    assert pulled.image.id == busybox.id
    assert pulled.digest == pushed.digest
    assert pulled.image.tags == [name]
    assert f"Status: Downloaded newer image for {name}" in progress.lines
    layer = other_engine.images.layers.chain(pulled.image.top_chain)[-1]
    assert (other_engine.images.layers.diff_dir(layer.chain_id) / "bin" / "busybox").exists()
    again = Recorder()
    other_engine.registry.pull(name, progress=again)
    assert f"Status: Image is up to date for {name}" in again.lines


def test_second_push_skips_existing_blobs_and_reuses_compressed_layer(engine, busybox, server):
    name = f"{server.address}/bb:latest"
    engine.images.tag(busybox.id, name)
    first = Recorder()
    [one] = engine.registry.push(name, progress=first)
    assert any(line.endswith(": Pushed") for line in first.lines)
    rows = engine.db.query("SELECT blob, media_type FROM layer_blobs")
    gzipped = [row["blob"] for row in rows if row["media_type"].endswith("gzip")]
    assert len(gzipped) == 1  # compressed once and remembered
    second = Recorder()
    [two] = engine.registry.push(name, progress=second)
    assert any(line.endswith(": Layer already exists") for line in second.lines)
    assert one.digest == two.digest
    assert len(engine.db.query("SELECT blob FROM layer_blobs")) == len(rows)


def test_chunked_upload_and_cross_repository_mount(engine, other_engine, busybox, server):
    first, second = f"{server.address}/a/bb:1", f"{server.address}/b/bb:1"
    engine.images.tag(busybox.id, first)
    engine.images.tag(busybox.id, second)
    engine.registry.push(first, chunk_size=64 * 1024)
    progress = Recorder()
    engine.registry.push(second, progress=progress)
    assert any("Mounted from a/bb" in line for line in progress.lines), progress.lines
    [pulled] = other_engine.registry.pull(second)
    assert pulled.image.id == busybox.id


def test_pull_by_digest_and_all_tags(engine, other_engine, busybox, server):
    for tag in ("1", "2", "3"):
        engine.images.tag(busybox.id, f"{server.address}/multi:{tag}")
        engine.registry.push(f"{server.address}/multi:{tag}")
    digest = engine.registry.push(f"{server.address}/multi:1")[0].digest
    [by_digest] = other_engine.registry.pull(f"{server.address}/multi@{digest}")
    assert by_digest.image.id == busybox.id and by_digest.image.tags == []
    results = other_engine.registry.pull(f"{server.address}/multi", all_tags=True)
    assert sorted(r.reference.tag for r in results) == ["1", "2", "3"]
    assert sorted(other_engine.images.get(busybox.id).tags) == [f"{server.address}/multi:{t}" for t in "123"]


def test_index_with_platform_selection(engine, other_engine, busybox, server):
    name = f"{server.address}/plat:single"
    engine.images.tag(busybox.id, name)
    [pushed] = engine.registry.push(name)
    config = json.loads(engine.images.blobs.read(busybox.id))
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        {"mediaType": mt.DOCKER_MANIFEST, "digest": pushed.digest, "size": pushed.size,
         "platform": {"os": "linux", "architecture": config["architecture"]}},
    ]}
    conn = http.client.HTTPConnection(server.address)
    conn.request("PUT", "/v2/plat/manifests/multi", body=json.dumps(index), headers={"Content-Type": mt.OCI_INDEX})
    response = conn.getresponse()
    response.read()
    assert response.status == 201
    index_digest = response.headers["Docker-Content-Digest"]
    with pytest.raises(NotFound) as info:
        other_engine.registry.pull(f"{server.address}/plat:multi", platform="linux/s390x")
    assert "linux/s390x" in str(info.value)
    assert image_ids(other_engine) == []
    [pulled] = other_engine.registry.pull(f"{server.address}/plat:multi", platform=f"linux/{config['architecture']}")
    assert pulled.image.id == busybox.id and pulled.digest == index_digest
    assert f"{server.address}/plat@{index_digest}" in pulled.image.repo_digests


def test_blob_with_wrong_digest_is_refused_and_leaves_no_image(engine, other_engine, busybox, server, tmp_path):
    name = f"{server.address}/tampered:1"
    engine.images.tag(busybox.id, name)
    engine.registry.push(name)
    layer_digest = json.loads(server.storage.get_manifest("tampered", "1")[0].read_bytes())["layers"][0]["digest"]
    blob = server.storage.blob_path(layer_digest)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(CorruptData) as info:
        other_engine.registry.pull(name)
    assert layer_digest in str(info.value)
    assert image_ids(other_engine) == []
    assert not other_engine.images.blobs.has(layer_digest)
    assert list((other_engine.config.tmp_dir).iterdir()) == []


class _BreakingHandler(http.server.BaseHTTPRequestHandler):
    """Serves a registry's files, but sends only half of the one blob named ``broken``."""

    files: ClassVar[dict[str, tuple[bytes, str]]] = {}
    requests: ClassVar[list[tuple[str, str | None]]] = []
    broken = ""
    breaks_left = 1000
    honour_range = False

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/v2/":
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        key = self.path.rsplit("/", 1)[-1]
        if key not in self.files:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body, media_type = self.files[key]
        self.requests.append((key, self.headers.get("Range")))
        ranged = self.headers.get("Range", "").removeprefix("bytes=").rstrip("-")
        if ranged.isdigit() and self.honour_range:
            start = int(ranged)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            self.wfile.write(body[start:])
            return
        self.send_response(200)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if key == self.broken and self.breaks_left:
            type(self).breaks_left -= 1
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


def _breaking_server(engine, busybox, server, **behaviour):
    """A server with the pushed busybox's files whose layer download breaks off."""
    engine.images.tag(busybox.id, f"{server.address}/src:1")
    engine.registry.push(f"{server.address}/src:1")
    path, media_type, _digest = server.storage.get_manifest("src", "1")
    manifest = json.loads(path.read_bytes())
    layer = manifest["layers"][0]["digest"]
    handler = type("Handler", (_BreakingHandler,), {
        "files": {
            "1": (path.read_bytes(), media_type),
            manifest["config"]["digest"]: (server.storage.blob_path(manifest["config"]["digest"]).read_bytes(),
                                           "application/octet-stream"),
            layer: (server.storage.blob_path(layer).read_bytes(), "application/octet-stream"),
        },
        "broken": layer,
        "requests": [],
        **behaviour,
    })
    return http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler), handler, layer


def test_broken_download_resumes_with_range(engine, other_engine, busybox, server):
    httpd, handler, layer = _breaking_server(engine, busybox, server, breaks_left=1, honour_range=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        [pulled] = other_engine.registry.pull(f"127.0.0.1:{httpd.server_address[1]}/src:1")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert pulled.image.id == busybox.id
    ranges = [value for key, value in handler.requests if key == layer]
    assert ranges[0] is None and ranges[1] and ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-"


def test_server_dying_mid_blob_leaves_no_image_and_a_clear_error(engine, other_engine, busybox, server):
    httpd, _handler, layer = _breaking_server(engine, busybox, server)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises((Offline, CorruptData)) as info:
            other_engine.registry.pull(f"127.0.0.1:{httpd.server_address[1]}/src:1")
        assert "broke" in str(info.value) or "mismatch" in str(info.value)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert image_ids(other_engine) == []
    assert not other_engine.images.blobs.has(layer)
    # the same pull from a healthy registry completes afterwards
    [pulled] = other_engine.registry.pull(f"{server.address}/src:1")
    assert pulled.image.id == busybox.id


def test_license_policy_refuses_labelled_image_unless_registry_is_private(engine, busybox_tar, server):
    with open(busybox_tar, "rb") as handle:
        image = import_rootfs(engine.images, handle, "redcap:14",
                              ('CMD ["sh"]', f"LABEL {policy.LABEL}=false"))
    name = f"{server.address}/redcap:14"
    engine.images.tag(image.id, name)
    with pytest.raises(PolicyRefused) as info:
        engine.registry.push(name)
    assert policy.LABEL in str(info.value)
    assert server.storage.repositories() == []  # nothing was uploaded
    (engine.config.root / "registries.json").write_text(json.dumps({"private": [server.address]}))
    [pushed] = engine.registry.push(name)
    assert pushed.digest.startswith("sha256:")


def test_htpasswd_auth_login_push_logout(engine, other_engine, busybox, tmp_path, docker_config):
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(make_htpasswd_line("alice", "wonderland", rounds=4) + "\n")
    running = start_in_thread(RegistryStorage(tmp_path / "authreg"), htpasswd=htpasswd)
    try:
        name = f"{running.address}/private/bb:1"
        engine.images.tag(busybox.id, name)
        with pytest.raises(RegistryAuthError) as info:
            engine.registry.push(name)
        assert "login" in str(info.value)
        with pytest.raises(RegistryAuthError):
            engine.registry.login(running.address, "alice", "wrong")
        assert not docker_config.exists()
        engine.registry.login(running.address, "alice", "wonderland")
        assert running.address in json.loads(docker_config.read_text())["auths"]
        engine.registry.push(name)
        [pulled] = other_engine.registry.pull(name)  # same docker config: logged in
        assert pulled.image.id == busybox.id
        assert engine.registry.logout(running.address)
        with pytest.raises(RegistryAuthError):
            other_engine.registry.pull(name)
    finally:
        running.stop()


def test_tls_server_with_self_signed_certificate(engine, other_engine, busybox, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    running = start_in_thread(RegistryStorage(tmp_path / "tlsreg"), tls=ssl_context(cert, key))
    try:
        name = f"{running.address}/secure/bb:1"
        engine.images.tag(busybox.id, name)
        transport = engine.registry.transport(running.address)
        assert transport.scheme() == "https"  # loopback is insecure: TLS without verification
        engine.registry.push(name)
        [pulled] = other_engine.registry.pull(name)
        assert pulled.image.id == busybox.id
    finally:
        running.stop()


# --- the HTTP surface of the spec, spoken directly ---------------------------------------------


def call(server, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection(server.address)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, response.headers, data


def error_code(data: bytes) -> str:
    errors = json.loads(data)["errors"]
    assert set(errors[0]) >= {"code", "message"}
    return errors[0]["code"]


def sha(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_spec_uploads_ranges_and_errors(server):
    status, headers, _ = call(server, "GET", "/v2/")
    assert status == 200 and headers["Docker-Distribution-API-Version"] == "registry/2.0"
    status, _, data = call(server, "POST", f"/v2/x/blobs/uploads/?digest={sha(b'other')}", b"payload")
    assert status == 400 and error_code(data) == "DIGEST_INVALID"
    assert not server.storage.has_blob(sha(b"payload"))
    status, headers, _ = call(server, "POST", "/v2/x/blobs/uploads/")
    assert status == 202
    location = headers["Location"]
    status, headers, _ = call(server, "PATCH", location, b"0123456789", {"Content-Range": "0-9"})
    assert status == 202 and headers["Range"] == "0-9"
    status, _, data = call(server, "PATCH", location, b"xyz", {"Content-Range": "20-22"})
    assert status == 416 and error_code(data) == "BLOB_UPLOAD_INVALID"
    status, headers, _ = call(server, "GET", location)
    assert status == 204 and headers["Range"] == "0-9"
    status, headers, _ = call(server, "PUT", f"{location}?digest={sha(b'0123456789abc')}", b"abc",
                              {"Content-Range": "10-12"})
    assert status == 201 and headers["Docker-Content-Digest"] == sha(b"0123456789abc")
    status, headers, data = call(server, "GET", f"/v2/x/blobs/{sha(b'0123456789abc')}", headers={"Range": "bytes=2-5"})
    assert status == 206 and data == b"2345" and headers["Content-Range"] == "bytes 2-5/13"
    status, headers, data = call(server, "HEAD", f"/v2/x/blobs/{sha(b'0123456789abc')}")
    assert status == 200 and headers["Content-Length"] == "13" and data == b""
    status, _, data = call(server, "GET", f"/v2/x/blobs/{sha(b'none')}")
    assert status == 404 and error_code(data) == "BLOB_UNKNOWN"
    status, _, data = call(server, "GET", "/v2/nope/manifests/latest")
    assert status == 404 and error_code(data) == "NAME_UNKNOWN"
    status, _, data = call(server, "GET", "/v2/x/manifests/latest")
    assert status == 404 and error_code(data) == "MANIFEST_UNKNOWN"
    status, _, data = call(server, "GET", "/v2/Bad_Name/tags/list")
    assert status == 400 and error_code(data) == "NAME_INVALID"
    status, _, _ = call(server, "DELETE", f"/v2/x/blobs/{sha(b'0123456789abc')}")
    assert status == 202
    status, _, _ = call(server, "GET", f"/v2/x/blobs/{sha(b'0123456789abc')}")
    assert status == 404


def test_spec_manifests_tags_catalog_referrers(server):
    config, layer = b'{"os":"linux","architecture":"amd64"}', b"layer"
    for blob in (config, layer):
        assert call(server, "POST", f"/v2/r/blobs/uploads/?digest={sha(blob)}", blob)[0] == 201
    manifest = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                           "config": {"mediaType": mt.OCI_CONFIG, "digest": sha(config), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": sha(layer), "size": len(layer)}]}).encode()
    for tag in ("a", "b", "c"):
        status, headers, _ = call(server, "PUT", f"/v2/r/manifests/{tag}", manifest, {"Content-Type": mt.OCI_MANIFEST})
        assert status == 201 and headers["Docker-Content-Digest"] == sha(manifest)
    status, headers, data = call(server, "GET", "/v2/r/manifests/a")
    assert status == 200 and data == manifest and headers["Content-Type"] == mt.OCI_MANIFEST
    status, headers, data = call(server, "GET", "/v2/r/tags/list?n=2")
    assert json.loads(data) == {"name": "r", "tags": ["a", "b"]}
    assert headers["Link"] == '</v2/r/tags/list?n=2&last=b>; rel="next"'
    status, headers, data = call(server, "GET", "/v2/r/tags/list?n=2&last=b")
    assert json.loads(data)["tags"] == ["c"] and "Link" not in headers
    artifact = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "artifactType": "application/x.sig",
                           "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha(config),
                                      "size": len(config)},
                           "layers": [], "subject": {"mediaType": mt.OCI_MANIFEST, "digest": sha(manifest),
                                                     "size": len(manifest)}}).encode()
    status, headers, _ = call(server, "PUT", f"/v2/r/manifests/{sha(artifact)}", artifact,
                              {"Content-Type": mt.OCI_MANIFEST})
    assert status == 201 and headers["OCI-Subject"] == sha(manifest)
    status, headers, data = call(server, "GET", f"/v2/r/referrers/{sha(manifest)}?artifactType=application/x.sig")
    index = json.loads(data)
    assert status == 200 and headers["Content-Type"].startswith(mt.OCI_INDEX)
    assert headers["OCI-Filters-Applied"] == "artifactType"
    assert [d["digest"] for d in index["manifests"]] == [sha(artifact)]
    status, _, data = call(server, "GET", f"/v2/r/referrers/{sha(manifest)}?artifactType=other")
    assert json.loads(data)["manifests"] == []
    status, _, data = call(server, "GET", "/v2/_catalog")
    assert json.loads(data) == {"repositories": ["r"]}
    assert call(server, "DELETE", "/v2/r/manifests/c")[0] == 202
    assert json.loads(call(server, "GET", "/v2/r/tags/list")[2])["tags"] == ["a", "b"]
    assert call(server, "DELETE", f"/v2/r/manifests/{sha(manifest)}")[0] == 202
    status, _, data = call(server, "GET", "/v2/r/manifests/a")
    assert status == 404 and error_code(data) == "MANIFEST_UNKNOWN"
    # a name no tag can have is simply not there (the OCI conformance suite's 'nonexistent manifest')
    status, _, data = call(server, "GET", "/v2/r/manifests/.INVALID_MANIFEST_NAME")
    assert status == 404 and error_code(data) == "MANIFEST_UNKNOWN"
    assert call(server, "HEAD", "/v2/r/manifests/.INVALID_MANIFEST_NAME")[0] == 404


def test_read_only_server_serves_but_refuses_writes(engine, other_engine, busybox, tmp_path):
    folder = tmp_path / "roreg"
    writable = start_in_thread(RegistryStorage(folder))
    name = f"{writable.address}/ro/bb:1"
    engine.images.tag(busybox.id, name)
    engine.registry.push(name)
    writable.stop()
    running = start_in_thread(RegistryStorage(folder, read_only=True))
    try:
        status, _, data = call(running, "POST", "/v2/ro/blobs/uploads/")
        assert status == 405 and error_code(data) == "UNSUPPORTED"
        [pulled] = other_engine.registry.pull(f"{running.address}/ro/bb:1")
        assert pulled.image.id == busybox.id
    finally:
        running.stop()


def test_gc_keeps_what_manifests_reference(engine, busybox, server):
    name = f"{server.address}/gc:1"
    engine.images.tag(busybox.id, name)
    engine.registry.push(name)
    assert call(server, "POST", f"/v2/gc/blobs/uploads/?digest={sha(b'orphan')}", b"orphan")[0] == 201
    report = server.storage.gc()
    assert report.deleted == [sha(b"orphan")]
    path = Path(server.storage.get_manifest("gc", "1")[0])
    for descriptor in [json.loads(path.read_bytes())["config"]] + json.loads(path.read_bytes())["layers"]:
        assert server.storage.has_blob(descriptor["digest"])


def make_layered_image(engine: Engine, name: str, layers: int = 4) -> str:
    """An image of several small layers (uncompressed tars in the store); returns its ID."""
    import io
    import tarfile

    from dockerbank.image import compression
    from dockerbank.oci import digest as dg
    from dockerbank.oci import imageconfig

    diff_ids, parent = [], None
    for index in range(layers):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            data = (f"layer {index}\n" * (2000 * (index + 1))).encode()
            info = tarfile.TarInfo(f"data/file{index}.txt")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        buffer.seek(0)
        blob, size = engine.images.blobs.put_stream(buffer)
        with engine.images.blobs.open(blob) as handle:
            layer = engine.images.layers.add(parent, handle, expected_diff_id=blob)
        engine.images.add_layer_blob(blob, blob, compression.MEDIA_TAR, size)
        diff_ids.append(layer.diff_id)
        parent = layer.chain_id
    history = [{"created": "2026-01-01T00:00:00Z", "created_by": f"layer {i}"} for i in range(layers)]
    config = imageconfig.new_config("2026-01-01T00:00:00Z", diff_ids, history)
    record = engine.images.record_image(imageconfig.canonical_bytes(config))
    engine.images.tag(record.id, name)
    assert dg.chain_ids(diff_ids)[-1] == record.top_chain
    return record.id


def test_multi_layer_image_pushes_in_parallel_and_pulls_in_order(engine, other_engine, server):
    name = f"{server.address}/layered/app:1"
    image_id = make_layered_image(engine, name, layers=5)
    engine.registry.push(name, chunk_size=4096)
    [pulled] = other_engine.registry.pull(name)
    assert pulled.image.id == image_id
    layers = other_engine.images.layers.chain(pulled.image.top_chain)
    assert len(layers) == 5
    for index, layer in enumerate(layers):
        assert (other_engine.images.layers.diff_dir(layer.chain_id) / "data" / f"file{index}.txt").exists()
    # the second push reuses the five compressed blobs remembered by the first
    gzipped = engine.db.query("SELECT blob FROM layer_blobs WHERE media_type LIKE '%gzip'")
    assert len(gzipped) == 5
    progress = Recorder()
    engine.registry.push(name, progress=progress)
    assert sum(line.endswith("Layer already exists") for line in progress.lines) == 5


class _TokenGateway(http.server.BaseHTTPRequestHandler):
    """A Docker-Hub-like front: ``/token`` hands out Bearer tokens for Basic credentials, and
    ``/v2/...`` is forwarded to the real registry only with such a token."""

    upstream = ""
    token = "tok-" + "x" * 20
    seen_scopes: ClassVar[list[str]] = []
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _reply(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        from urllib.parse import parse_qs, urlsplit

        from dockerbank.registry.server.auth import parse_basic

        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        parts = urlsplit(self.path)
        if parts.path == "/token":
            if parse_basic(self.headers.get("Authorization")) != ("carol", "secret"):
                self._reply(401)
                return
            query = parse_qs(parts.query)
            self.seen_scopes.extend(query.get("scope", []))
            assert query.get("service") == ["gateway"]
            self._reply(200, json.dumps({"token": self.token}).encode(), {"Content-Type": "application/json"})
            return
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            host = self.headers["Host"]
            self._reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}', {
                "WWW-Authenticate": f'Bearer realm="http://{host}/token",service="gateway",scope="repository:gw:pull"',
            })
            return
        conn = http.client.HTTPConnection(self.upstream)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("authorization", "host")}
        conn.request(self.command, self.path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        passed = {k: v for k, v in response.headers.items()
                  if k.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server")}
        conn.close()
        self._reply(response.status, data, passed)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


def test_bearer_token_flow_from_www_authenticate(engine, other_engine, busybox, server):
    handler = type("Gateway", (_TokenGateway,), {"upstream": server.address, "seen_scopes": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    gateway = f"127.0.0.1:{httpd.server_address[1]}"
    try:
        name = f"{gateway}/gw:1"
        engine.images.tag(busybox.id, name)
        with pytest.raises(RegistryAuthError):  # no credentials: the token service says no
            engine.registry.push(name)
        engine.registry.credentials.store(gateway, "carol", "secret")
        engine.registry.push(name)
        [pulled] = other_engine.registry.pull(name)
        assert pulled.image.id == busybox.id
        assert "repository:gw:pull" in handler.seen_scopes
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_zstd_layers_in_an_oci_manifest_pull_and_push_back(engine, other_engine, busybox, busybox_tar, server):
    import zstandard

    layer = zstandard.ZstdCompressor(level=3).compress(busybox_tar.read_bytes())
    config = engine.images.blobs.read(busybox.id)
    for blob in (layer, config):
        assert call(server, "POST", f"/v2/zstd/blobs/uploads/?digest={sha(blob)}", blob)[0] == 201
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": sha(layer),
                    "size": len(layer)}],
    }).encode()
    assert call(server, "PUT", "/v2/zstd/manifests/1", manifest, {"Content-Type": mt.OCI_MANIFEST})[0] == 201
    [pulled] = other_engine.registry.pull(f"{server.address}/zstd:1")
    assert pulled.image.id == busybox.id
    # pushed on as it was stored: an OCI manifest naming the same zstd blob
    other_engine.images.tag(pulled.image.id, f"{server.address}/zstd-again:1")
    [again] = other_engine.registry.push(f"{server.address}/zstd-again:1")
    doc = json.loads(server.storage.get_manifest("zstd-again", "1")[0].read_bytes())
    assert doc["mediaType"] == mt.OCI_MANIFEST and doc["layers"][0]["digest"] == sha(layer)
    assert again.digest == sha(server.storage.get_manifest("zstd-again", "1")[0].read_bytes())
