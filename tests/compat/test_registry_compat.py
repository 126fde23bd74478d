"""Real clients nobody here wrote against Dockerbank's registry server: skopeo, docker, podman.

The server runs in-process on 127.0.0.1 (a free port). docker and podman treat loopback
registries as insecure (plain HTTP allowed) by default; skopeo is told so by flags.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest
from conftest import require_binary

from dockerbank.oci import digest as dg

SCRIPTS = os.path.join(os.path.dirname(__file__), "..", "..", "scripts")


def run(*cmd: str, timeout: int = 180) -> subprocess.CompletedProcess:
    result = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {result.returncode}: {result.stderr.strip()[-2000:]}")
    return result


@pytest.fixture(scope="module")
def dockerd():
    """A running dockerd (started by scripts/start-services.sh when none runs)."""
    require_binary("docker")
    if subprocess.run(["docker", "info"], capture_output=True, timeout=60, check=False).returncode != 0:
        run("bash", os.path.join(SCRIPTS, "start-services.sh"), timeout=120)


def test_skopeo_copy_both_ways(engine, other_engine, busybox, server, tmp_path):
    skopeo = require_binary("skopeo")
    name = f"{server.address}/dockerbank/bb:1"
    engine.images.tag(busybox.id, name)
    engine.registry.push(name)
    archive = tmp_path / "bb.oci.tar"
    run(skopeo, "copy", "--src-tls-verify=false", f"docker://{name}", f"oci-archive:{archive}")
    run(skopeo, "copy", "--dest-tls-verify=false", f"oci-archive:{archive}", f"docker://{server.address}/skopeo/bb:2")
    raw = run(skopeo, "inspect", "--tls-verify=false", "--config", "--raw",
              f"docker://{server.address}/skopeo/bb:2").stdout.encode()
    assert json.loads(raw)["rootfs"]["diff_ids"] == engine.images.diff_ids(busybox.id)
    [pulled] = other_engine.registry.pull(f"{server.address}/skopeo/bb:2")
    # skopeo re-serialises the config when it converts Docker schema 2 to OCI: the ID is its digest
    assert pulled.image.id == dg.of_bytes(raw)
    # registry to registry without conversion keeps the config bytes, hence the image ID
    run(skopeo, "copy", "--src-tls-verify=false", "--dest-tls-verify=false", f"docker://{name}",
        f"docker://{server.address}/skopeo/same:1")
    [same] = other_engine.registry.pull(f"{server.address}/skopeo/same:1")
    assert same.image.id == busybox.id


def test_skopeo_pushes_docker_archive_dockerbank_pulls(other_engine, busybox_tar, server, tmp_path, dockerd):
    skopeo = require_binary("skopeo")
    tag = f"dockerbank-compat-{uuid.uuid4().hex[:8]}:1"
    run("docker", "import", str(busybox_tar), tag)
    try:
        archive = tmp_path / "docker.tar"
        run("docker", "save", "-o", str(archive), tag)
        docker_id = run("docker", "inspect", "--format", "{{.Id}}", tag).stdout.strip()
    finally:
        run("docker", "rmi", tag)
    run(skopeo, "copy", "--dest-tls-verify=false", f"docker-archive:{archive}", f"docker://{server.address}/x:1")
    [pulled] = other_engine.registry.pull(f"{server.address}/x:1")
    assert pulled.image.id == docker_id


def test_docker_push_dockerbank_pull_runs(other_engine, busybox_tar, server, dockerd):
    name = f"{server.address}/fromdocker/bb:{uuid.uuid4().hex[:8]}"
    run("docker", "import", "--change", 'CMD ["sh"]', str(busybox_tar), name)
    try:
        run("docker", "push", name)
        docker_id = run("docker", "inspect", "--format", "{{.Id}}", name).stdout.strip()
        repo_digest = run("docker", "inspect", "--format", "{{index .RepoDigests 0}}", name).stdout.strip()
    finally:
        run("docker", "rmi", name)
    [pulled] = other_engine.registry.pull(name)
    assert pulled.image.id == docker_id
    assert repo_digest in pulled.image.repo_digests
    # the pulled layer is a working root filesystem: run its shell in it
    layer = other_engine.images.layers.chain(pulled.image.top_chain)[-1]
    rootfs = other_engine.images.layers.diff_dir(layer.chain_id)
    out = run("chroot", str(rootfs), "/bin/sh", "-c", "echo pulled-and-running").stdout
    assert out.strip() == "pulled-and-running"


def test_dockerbank_push_docker_pull_and_run(engine, busybox, server, dockerd):
    name = f"{server.address}/tod/bb:{uuid.uuid4().hex[:8]}"
    engine.images.tag(busybox.id, name)
    [pushed] = engine.registry.push(name)
    run("docker", "pull", name)
    try:
        assert run("docker", "inspect", "--format", "{{.Id}}", name).stdout.strip() == busybox.id
        digests = run("docker", "inspect", "--format", "{{json .RepoDigests}}", name).stdout
        assert pushed.digest in digests
        out = run("docker", "run", "--rm", "--network", "none", name, "echo", "from-dockerbank").stdout
        assert out.strip() == "from-dockerbank"
    finally:
        run("docker", "rmi", name)


def test_podman_push_and_pull(engine, other_engine, busybox, server, tmp_path):
    podman = require_binary("podman")
    name = f"{server.address}/podman/bb:1"
    engine.images.tag(busybox.id, name)
    engine.registry.push(name)
    runroot = tempfile.mkdtemp(prefix="pdm-", dir="/tmp")  # podman wants a runroot under 50 characters
    storage = ["--root", str(tmp_path / "podman-root"), "--runroot", runroot, "--storage-driver", "vfs"]
    try:
        _podman_roundtrip(podman, storage, engine, other_engine, busybox, server)
    finally:
        shutil.rmtree(runroot, ignore_errors=True)


def _podman_roundtrip(podman, storage, engine, other_engine, busybox, server) -> None:
    name = f"{server.address}/podman/bb:1"
    run(podman, *storage, "pull", "--tls-verify=false", name)
    podman_id = run(podman, *storage, "image", "inspect", "--format", "{{.Id}}", name).stdout.strip()
    assert f"sha256:{podman_id}" == busybox.id or podman_id == busybox.id
    target = f"{server.address}/frompodman/bb:2"
    run(podman, *storage, "push", "--tls-verify=false", name, target)
    [pulled] = other_engine.registry.pull(target)
    assert pulled.image.id == busybox.id
