"""Repository URLs: which backend a ``--repo`` value names, and the ssh command line of sftp://."""

from __future__ import annotations

import pytest

from dockerbank.backup import oci, sftp
from dockerbank.backup.storage import DirBackend, open_backend
from dockerbank.errors import InvalidArgument


def test_paths_and_dir_urls_are_directories(tmp_path):
    assert isinstance(open_backend(tmp_path / "r"), DirBackend)
    assert open_backend(f"dir:{tmp_path}/r").path == tmp_path / "r"
    with pytest.raises(InvalidArgument, match="unsupported repository URL scheme s3://"):
        open_backend("s3://bucket/x")


def test_oci_urls():
    assert oci.parse_url("oci://127.0.0.1:5000/backups/lab") == ("127.0.0.1:5000", "backups/lab")
    for bad in ("oci://host", "oci://host/", "oci://host/Upper"):
        with pytest.raises(InvalidArgument):
            oci.parse_url(bad)
    assert oci.tag_of("snapshots/20260101T000000Z-abcdef") == "20260101T000000Z-abcdef"
    assert oci.tag_of("keys/0123") == "key-0123" and oci.tag_of("config") == "config"


def test_sftp_urls_and_host_key_checking(monkeypatch):
    assert sftp.parse_url("sftp://bk@nas.lab:2222/srv/backup/") == ("bk", "nas.lab", 2222, "/srv/backup")
    assert sftp.parse_url("sftp://nas/~/backups") == (None, "nas", None, "backups")
    assert sftp.parse_url("sftp://[::1]/b")[1] == "::1"
    with pytest.raises(InvalidArgument):
        sftp.parse_url("sftp://host/")
    monkeypatch.delenv("DOCKERBANK_SSH_COMMAND", raising=False)
    argv = sftp.ssh_argv("bk", "nas", 2222)
    assert argv[0] == "ssh" and argv[-3:] == ["--", "bk@nas", "sftp"]
    assert "StrictHostKeyChecking=yes" in argv and "BatchMode=yes" in argv and argv[argv.index("-p") + 1] == "2222"
    monkeypatch.setenv("DOCKERBANK_SSH_COMMAND", "ssh -i /k")
    assert sftp.ssh_argv(None, "nas", None)[:3] == ["ssh", "-i", "/k"]
