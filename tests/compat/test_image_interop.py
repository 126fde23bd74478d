"""Images move both ways between Dockerbank and the real docker, podman and skopeo.

Needs a running dockerd: if ``docker info`` fails, the fixture starts a private dockerd
(own socket, pidfile, data and exec roots, no bridge) and stops it afterwards; if that
fails too, the tests fail loudly.

podman on this host: its default rlimits (nofile 1048576, nproc) exceed the host's hard
limits, which root cannot raise here (no CAP_SYS_RESOURCE), and crun 1.8 refuses hybrid
cgroups; so podman runs with ``--runtime runc`` and explicit ``--ulimit`` values.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import pytest
import zstandard
from conftest import require_binary

from dockerbank.image.load import load_file
from dockerbank.image.save import save
from dockerbank.oci import digest as dg

PODMAN_RUN = ["--runtime", "runc"]
PODMAN_RUN_OPTS = ["--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


def _run(cmd: list[str], env: dict | None = None, timeout: int = 180, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {result.returncode}: {result.stderr.strip()}")
    return result


@pytest.fixture(scope="session")
def docker_env(tmp_path_factory):
    """Environment for docker commands that reach a running dockerd (started here if needed)."""
    require_binary("docker")
    env = dict(os.environ)
    if _run(["docker", "info"], env, timeout=30, check=False).returncode == 0:
        yield env
        return
    dockerd = require_binary("dockerd")
    work = tmp_path_factory.mktemp("dockerd")
    sock, pidfile = work / "docker.sock", work / "docker.pid"
    log = open(work / "dockerd.log", "wb")
    proc = subprocess.Popen(
        [dockerd, "--host", f"unix://{sock}", "--pidfile", str(pidfile), "--data-root", str(work / "data"),
         "--exec-root", str(work / "exec"), "--bridge", "none", "--iptables=false"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    env["DOCKER_HOST"] = f"unix://{sock}"
    deadline = time.monotonic() + 60
    while _run(["docker", "info"], env, timeout=30, check=False).returncode != 0:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"cannot start dockerd: see {work / 'dockerd.log'}:\n{(work / 'dockerd.log').read_text()[-2000:]}")
        time.sleep(0.5)
    try:
        yield env
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        for path in (sock, pidfile):
            if path.exists():
                path.unlink()


@pytest.fixture
def name():
    """A reference no other test or user has, removed from docker and podman afterwards."""
    ref = f"dockerbank-compat/bb:{uuid.uuid4().hex[:10]}"
    yield ref
    subprocess.run(["docker", "rmi", "-f", ref], capture_output=True)
    if shutil.which("podman"):
        subprocess.run(["podman", "rmi", "-f", ref], capture_output=True)


def _docker_image(docker_env, busybox_tar: Path, ref: str) -> dict:
    _run(["docker", "import", "-c", 'CMD ["sh"]', str(busybox_tar), ref], docker_env)
    return json.loads(_run(["docker", "image", "inspect", ref], docker_env).stdout)[0]


def test_docker_save_loads_with_same_ids(engine, tmp_path, docker_env, busybox_tar, name):
    info = _docker_image(docker_env, busybox_tar, name)
    archive = tmp_path / "docker.tar"
    _run(["docker", "save", "-o", str(archive), name], docker_env)
    [loaded] = load_file(engine.images, archive)
    assert loaded.id == info["Id"]
    assert engine.images.diff_ids(loaded.id) == info["RootFS"]["Layers"]
    assert engine.images.resolve(name).id == info["Id"]


def test_dockerbank_save_runs_in_docker_and_podman(engine, busybox, tmp_path, docker_env, name):
    engine.images.tag(busybox.id, name)
    archive = tmp_path / "db.tar"
    save(engine.images, [name], str(archive))
    out = _run(["docker", "load", "-i", str(archive)], docker_env).stdout
    assert f"Loaded image: {name}" in out
    info = json.loads(_run(["docker", "image", "inspect", name], docker_env).stdout)[0]
    assert info["Id"] == busybox.id
    assert info["RootFS"]["Layers"] == engine.images.diff_ids(busybox.id)
    network = [] if _run(["docker", "network", "inspect", "bridge"], docker_env, check=False).returncode == 0 \
        else ["--network", "none"]
    assert _run(["docker", "run", "--rm", *network, name, "echo", "hi"], docker_env).stdout == "hi\n"

    require_binary("podman")
    out = _run(["podman", "load", "-i", str(archive)])
    assert name.split("/", 1)[1] in out.stdout + out.stderr
    podman_id = _run(["podman", "image", "inspect", "--format", "{{.Id}}", name]).stdout.strip()
    assert "sha256:" + podman_id == busybox.id
    assert _run(["podman", *PODMAN_RUN, "run", "--rm", *PODMAN_RUN_OPTS, name, "echo", "hi"]).stdout == "hi\n"


def test_save_docker_roundtrip_keeps_digests(engine, busybox, tmp_path, docker_env, name):
    engine.images.tag(busybox.id, name)
    first = tmp_path / "first.tar"
    save(engine.images, [name], str(first))
    _run(["docker", "load", "-i", str(first)], docker_env)
    again = tmp_path / "again.tar"
    _run(["docker", "save", "-o", str(again), name], docker_env)
    from dockerbank.config import Config
    from dockerbank.engine import Engine

    other = Engine(Config(root=tmp_path / "other", run_root=tmp_path / "other-run"))
    try:
        [loaded] = load_file(other.images, again)
        assert loaded.id == busybox.id
        assert other.images.diff_ids(loaded.id) == engine.images.diff_ids(busybox.id)
        second = tmp_path / "second.tar"
        save(other.images, [name], str(second))
    finally:
        other.close()
    assert first.read_bytes() == second.read_bytes()


def test_oci_archives_from_skopeo_and_podman_load(engine, busybox, tmp_path, name):
    skopeo = require_binary("skopeo")
    require_binary("podman")
    engine.images.tag(busybox.id, name)
    docker_archive = tmp_path / "d.tar"
    save(engine.images, [name], str(docker_archive))
    diff_ids = engine.images.diff_ids(busybox.id)

    from dockerbank.config import Config
    from dockerbank.engine import Engine

    sk = tmp_path / "skopeo-oci.tar"
    _run([skopeo, "copy", f"docker-archive:{docker_archive}", f"oci-archive:{sk}:{name}"])
    _run(["podman", "load", "-i", str(docker_archive)])
    pod = tmp_path / "podman-oci.tar"
    _run(["podman", "save", "--format", "oci-archive", "-o", str(pod), name])
    # podman names what it loaded from a docker-archive "localhost/..." (its rule for names without a
    # registry), and saves it under that name
    for archive, loaded_name in ((sk, name), (pod, f"localhost/{name}")):
        other = Engine(Config(root=tmp_path / f"root-{archive.stem}", run_root=tmp_path / f"run-{archive.stem}"))
        try:
            [loaded] = load_file(other.images, archive)
            assert other.images.diff_ids(loaded.id) == diff_ids  # layers are gzip-compressed in these archives
            assert other.images.resolve(loaded_name).id == loaded.id
            top = other.images.resolve(loaded_name).top_chain
            assert (other.images.layers.diff_dir(top) / "bin" / "busybox").is_file()
        finally:
            other.close()

    # and podman loads our OCI archive
    ours = tmp_path / "ours-oci.tar"
    save(engine.images, [name], str(ours), archive_format="oci-archive")
    _run(["podman", "rmi", "-f", name])
    _run(["podman", "load", "-i", str(ours)])
    assert _run(["podman", *PODMAN_RUN, "run", "--rm", *PODMAN_RUN_OPTS, name, "echo", "hi"]).stdout == "hi\n"


def test_zstd_oci_archive_loads(engine, busybox, tmp_path):
    """An OCI archive whose layer is zstd-compressed (as podman --compression-format zstd writes)."""
    diff_id = engine.images.diff_ids(busybox.id)[0]
    with engine.images.layer_tar(diff_id) as stream:
        layer = stream.read()
    blob = zstandard.ZstdCompressor(level=3).compress(layer)
    config = engine.images.blobs.read(busybox.id)
    from dockerbank.image import archive_formats as fmt

    manifest = fmt.oci_manifest(busybox.id, len(config),
                                [("application/vnd.oci.image.layer.v1.tar+zstd", dg.of_bytes(blob), len(blob))])
    path = tmp_path / "zstd.tar"
    import io

    with tarfile.open(path, "w") as archive:
        for member, data in (("oci-layout", fmt.OCI_LAYOUT.encode()), (fmt.blob_path(dg.of_bytes(blob)), blob),
                             (fmt.blob_path(busybox.id), config), (fmt.blob_path(dg.of_bytes(manifest)), manifest),
                             ("index.json", fmt.oci_index([(dg.of_bytes(manifest), len(manifest), "localhost/z:1")]))):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    from dockerbank.config import Config
    from dockerbank.engine import Engine

    other = Engine(Config(root=tmp_path / "zroot", run_root=tmp_path / "zrun"))
    try:
        [loaded] = load_file(other.images, path)
        assert loaded.id == busybox.id and loaded.tags == ["localhost/z:1"]
        media = other.db.query_one("SELECT media_type FROM layer_blobs")["media_type"]
        assert media == "application/vnd.oci.image.layer.v1.tar+zstd"
        # a docker-archive saved from a zstd-only store carries the plain tar (same diff ID)
        out = tmp_path / "from-zstd.tar"
        save(other.images, ["localhost/z:1"], str(out))
        with tarfile.open(out) as archive:
            member = next(m for m in archive.getmembers() if m.name.endswith("layer.tar"))
            assert dg.of_bytes(archive.extractfile(member).read()) == diff_id
    finally:
        other.close()
