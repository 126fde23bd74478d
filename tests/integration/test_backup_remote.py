"""Backups that leave the host: an encrypted snapshot copied into a registry (Dockerbank's own
server, and Debian's docker-registry = distribution 2.8), the local repository deleted, and the
volume restored from ``oci://`` into a fresh root byte for byte."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import require_binary, run_cli

PASSWORD = {"DOCKERBANK_BACKUP_PASSWORD": "off-site passphrase"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_registry(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"registry exited {proc.returncode}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("registry did not come up")


@pytest.fixture(params=["dockerbank", "distribution"])
def registry(request, tmp_path):
    """A registry on 127.0.0.1 as its own process: Dockerbank's, or docker-registry 2.8."""
    port = _free_port()
    work = tmp_path / f"registry-{request.param}"
    work.mkdir()
    if request.param == "dockerbank":
        import sys

        cmd = [sys.executable, "-m", "dockerbank", "registry", "serve", "--listen", f"127.0.0.1:{port}",
               "--storage", str(work / "storage")]
    else:
        config = work / "config.yml"
        config.write_text("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                          f"storage:\n  filesystem:\n    rootdirectory: {work / 'storage'}\n  delete:\n"
                          f"    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n")
        cmd = [require_binary("docker-registry"), "serve", str(config)]
    with open(work / "log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=log)
    try:
        _wait_registry(port, proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _mountpoint(root: Path, name: str) -> Path:
    return Path(json.loads(run_cli(root, "volume", "inspect", name).stdout)[0]["Mountpoint"])


def test_copy_to_registry_then_restore_from_it_on_another_machine(registry, root, tmp_path):
    local = tmp_path / "repo"
    run_cli(root, "backup", "init", "--repo", str(local), "--encrypt", env=PASSWORD)
    run_cli(root, "volume", "create", "study")
    data = _mountpoint(root, "study")
    payload = os.urandom(5 << 20) + b"text " * 200_000
    (data / "big.bin").write_bytes(payload)
    (data / "sub").mkdir()
    (data / "sub" / "small.txt").write_text("subject 17: ok\n")
    sid = run_cli(root, "backup", "create", "study", "--repo", str(local), "-q", env=PASSWORD).stdout.decode().strip()

    remote = f"oci://{registry}/backups/lab"
    first = run_cli(root, "backup", "copy", "--from", str(local), "--to", remote, env=PASSWORD)
    assert f"copied {sid}".encode() in first.stdout
    again = run_cli(root, "backup", "copy", "--from", str(local), "--to", remote, env=PASSWORD)
    assert b"is already in" in again.stdout and b"sent 0 chunks" in again.stderr
    # the off-site copy shows in the metrics, for the monitoring's alerts
    metrics = run_cli(root, "system", "metrics", "--backup-repo", str(local), env=PASSWORD).stdout.decode()
    copied = [line for line in metrics.splitlines()
              if line.startswith("dockerbank_backup_copy_last_success_timestamp_seconds{") and remote in line]
    assert copied and float(copied[0].rsplit(" ", 1)[1]) > 0, metrics[-2000:]

    # the registry holds the snapshot as an artifact tagged by its ID, none of it in plain text
    with urllib.request.urlopen(urllib.request.Request(
            f"http://{registry}/v2/backups/lab/manifests/{sid}",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})) as response:
        manifest = json.loads(response.read())
    assert manifest["artifactType"] == "application/vnd.dockerbank.backup.snapshot.v1+json"
    assert len(manifest["layers"]) > 3

    shutil.rmtree(local)
    assert run_cli(root, "backup", "verify", "--repo", remote, env=PASSWORD).returncode == 0
    wrong = run_cli(root, "backup", "ls", "--repo", remote, check=False,
                    env={"DOCKERBANK_BACKUP_PASSWORD": "not it"})
    assert wrong.returncode == 1
    assert wrong.stderr.decode().strip() == f"Error: wrong passphrase for the backup repository {remote}"

    other = tmp_path / "other"
    other.mkdir()
    run_cli(other, "restore", sid, "--repo", remote, env=PASSWORD)
    restored = _mountpoint(other, "study")
    assert (restored / "big.bin").read_bytes() == payload
    assert (restored / "sub" / "small.txt").read_text() == "subject 17: ok\n"


def test_copy_between_repositories_with_other_keys(root, tmp_path, server):
    """An existing target with its own passphrase: chunks are re-encrypted, names re-keyed."""
    run_cli(root, "volume", "create", "vol")
    (_mountpoint(root, "vol") / "f").write_bytes(os.urandom(3 << 20))
    plain = tmp_path / "plain"
    sid = run_cli(root, "backup", "create", "vol", "--repo", str(plain), "-q").stdout.decode().strip()
    remote = f"oci://{server.address}/offsite"
    pw = tmp_path / "pw"
    pw.write_text("target key\n")
    run_cli(root, "backup", "init", "--repo", remote, "--encrypt", "--password-file", str(pw))
    out = run_cli(root, "backup", "copy", "--from", str(plain), "--to", remote, "--password-file", str(pw))
    assert b"re-encrypted" in out.stderr
    listed = run_cli(root, "backup", "ls", "-q", "--repo", remote, "--password-file", str(pw)).stdout.decode()
    assert listed.split() == [sid]
    assert run_cli(root, "backup", "verify", "--repo", remote, "--password-file", str(pw)).returncode == 0


def test_large_snapshot_continues_in_more_manifests_and_is_removed_whole(server, monkeypatch):
    """Past the chunk descriptors one manifest may list, the rest go to <id>.c1, .c2 ...;
    ``rm`` deletes them with the snapshot (Dockerbank's registry allows deletes)."""
    import io

    from dockerbank.backup import oci
    from dockerbank.backup.repository import Repository, Snapshot
    from dockerbank.registry.client.transport import Transport

    monkeypatch.setattr(oci, "MAX_CHUNK_REFS", 3)
    backend = oci.OciBackend(Transport(server.address, insecure=True), server.address, "big/snap")
    repo = Repository(backend)
    data = os.urandom(12 << 20)
    part, _ = repo.write_part("volume", "v", "tar", io.BytesIO(data))
    assert len(part.chunks) > 6
    sid = "20260101T000000Z-abcdef"
    repo.commit(Snapshot(sid, "2026-01-01T00:00:00Z", "t", "h", "/r", [], "none", [part]))
    tags = set(backend._tags())
    assert {sid, f"{sid}.c1", f"{sid}.c2"} <= tags
    fresh = Repository(oci.OciBackend(Transport(server.address, insecure=True), server.address, "big/snap"))
    assert [s.id for s in fresh.snapshots()] == [sid]          # continuations are not snapshots
    assert fresh.open_part(fresh.get(sid).parts[0]).read() == data
    fresh.remove([sid])
    assert not [t for t in backend._tags() if t.startswith(sid)]
