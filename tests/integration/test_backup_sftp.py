"""``sftp://`` repositories through the host's OpenSSH against a real sshd (Debian's
openssh-server, started by the test on 127.0.0.1 with its own host key): copy an encrypted
snapshot there, delete the local repository, restore from sftp into a fresh root byte for
byte; an unknown host key is refused in one line."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import require_binary, run_cli

PASSWORD = {"DOCKERBANK_BACKUP_PASSWORD": "sftp passphrase"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def sshd(tmp_path):
    """An sshd on 127.0.0.1 accepting one key for root; yields (port, ssh command, known_hosts)."""
    sshd_bin = require_binary("sshd")
    keygen = require_binary("ssh-keygen")
    work = tmp_path / "sshd"
    work.mkdir()
    os.chmod(work, 0o700)
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(work / "host_key")], check=True)
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(work / "client_key")], check=True)
    shutil.copy(work / "client_key.pub", work / "authorized_keys")
    port = _free_port()
    (work / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {work / 'host_key'}\nPidFile {work / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {work / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        "Subsystem sftp internal-sftp\nLogLevel ERROR\n")
    Path("/run/sshd").mkdir(exist_ok=True)   # privilege separation directory sshd insists on
    host_pub = (work / "host_key.pub").read_text().split()
    (work / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    (work / "empty_known_hosts").write_text("")
    with open(work / "log", "wb") as log:
        proc = subprocess.Popen([sshd_bin, "-D", "-e", "-f", str(work / "sshd_config")], stdout=log, stderr=log)
    deadline = time.monotonic() + 20
    while True:
        assert proc.poll() is None, (work / "log").read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "sshd did not start listening"
            time.sleep(0.05)
    base = f"ssh -i {work / 'client_key'} -o IdentitiesOnly=yes -F /dev/null"
    try:
        yield port, base, work
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _mountpoint(root: Path, name: str) -> Path:
    return Path(json.loads(run_cli(root, "volume", "inspect", name).stdout)[0]["Mountpoint"])


def test_backup_to_sftp_and_restore_from_it(sshd, root, tmp_path):
    port, ssh, work = sshd
    env = dict(PASSWORD, DOCKERBANK_SSH_COMMAND=f"{ssh} -o UserKnownHostsFile={work / 'known_hosts'}")
    local = tmp_path / "repo"
    run_cli(root, "backup", "init", "--repo", str(local), "--encrypt", env=env)
    run_cli(root, "volume", "create", "study")
    payload = os.urandom(3 << 20) + b"visit notes " * 50_000
    (_mountpoint(root, "study") / "data.bin").write_bytes(payload)
    sid = run_cli(root, "backup", "create", "study", "--repo", str(local), "-q", env=env).stdout.decode().strip()

    remote_dir = tmp_path / "offsite" / "host1"
    remote = f"sftp://root@127.0.0.1:{port}{remote_dir}"
    copied = run_cli(root, "backup", "copy", "--from", str(local), "--to", remote, env=env)
    assert f"copied {sid}".encode() in copied.stdout
    assert (remote_dir / "repo.json").is_file() and list((remote_dir / "chunks").rglob("*"))
    assert not list((remote_dir / "tmp").iterdir())
    grep = subprocess.run(["grep", "-rlF", "visit notes", str(remote_dir)], capture_output=True)
    assert grep.returncode == 1, grep.stdout

    shutil.rmtree(local)
    run_cli(root, "backup", "verify", "--repo", remote, env=env)
    other = tmp_path / "other"
    other.mkdir()
    run_cli(other, "restore", sid, "--repo", remote, env=env)
    assert (_mountpoint(other, "study") / "data.bin").read_bytes() == payload

    # a second backup straight into the sftp repository deduplicates against the first
    again = run_cli(root, "backup", "create", "study", "--repo", remote, env=env).stdout.decode()
    assert "new data 0B" in again or "new data 0 B" in again, again

    # a host whose key is not known is refused, in one line
    stranger = dict(PASSWORD, DOCKERBANK_SSH_COMMAND=f"{ssh} -o UserKnownHostsFile={work / 'empty_known_hosts'}")
    refused = run_cli(root, "backup", "ls", "--repo", remote, check=False, env=stranger)
    assert refused.returncode == 1
    lines = refused.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "Host key verification failed" in lines[0], lines
