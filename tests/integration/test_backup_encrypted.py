"""``backup init --encrypt`` through the CLI: no plaintext of a planted marker in the repository,
a wrong passphrase refused in one line, a flipped byte named by ``verify``, restore byte for byte."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import run_cli


def _mountpoint(root: Path, name: str) -> Path:
    return Path(json.loads(run_cli(root, "volume", "inspect", name).stdout)[0]["Mountpoint"])


def test_encrypted_repository_through_the_cli(root, tmp_path):
    repo = tmp_path / "repo"
    pw = tmp_path / "pw"
    pw.write_text("s3cret passphrase\n")
    out = run_cli(root, "backup", "init", "--repo", str(repo), "--encrypt", "--password-file", str(pw)).stdout
    assert b"encrypted" in out
    run_cli(root, "volume", "create", "patients")
    marker = os.urandom(64 << 10)     # incompressible: a plain repository would hold it verbatim
    (_mountpoint(root, "patients") / "marker.bin").write_bytes(marker)
    (_mountpoint(root, "patients") / "notes.txt").write_text("study subject 4711\n" * 1000)
    env = {"DOCKERBANK_BACKUP_PASSWORD": "s3cret passphrase"}
    sid = run_cli(root, "backup", "create", "patients", "--repo", str(repo), "-q", env=env).stdout.decode().strip()

    grep = subprocess.run(["grep", "-rlF", "study subject 4711", str(repo)], capture_output=True)
    assert grep.returncode == 1, grep.stdout            # 1: no match (2 would be an error)
    files = [p for p in repo.rglob("*") if p.is_file()]
    assert not any(marker[:64] in p.read_bytes() or b"patients" in p.read_bytes() for p in files)

    wrong = run_cli(root, "backup", "ls", "--repo", str(repo), check=False,
                    env={"DOCKERBANK_BACKUP_PASSWORD": "guess"})
    assert wrong.returncode == 1
    assert wrong.stderr.decode().strip().splitlines() == [f"Error: wrong passphrase for the backup repository {repo}"]
    nothing = run_cli(root, "backup", "ls", "--repo", str(repo), check=False)
    assert nothing.returncode == 1 and b"passphrase is needed" in nothing.stderr

    # restore into a fresh root, byte for byte
    other = tmp_path / "other"
    other.mkdir()
    run_cli(other, "restore", sid, "--repo", str(repo), "--password-file", str(pw))
    assert (_mountpoint(other, "patients") / "marker.bin").read_bytes() == marker

    # one flipped byte in one chunk: verify names that chunk and fails
    chunk = max((p for p in (repo / "chunks").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    raw = bytearray(chunk.read_bytes())
    raw[100] ^= 0xFF
    chunk.write_bytes(bytes(raw))
    verify = run_cli(root, "backup", "verify", "--repo", str(repo), check=False, env=env)
    assert verify.returncode == 1
    assert f"chunk {chunk.name} is corrupt: it fails authentication".encode() in verify.stderr
