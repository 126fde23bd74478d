"""A full disk (issue 20.2): on a small loop-mounted ext4 made by the test, operations that run out of
space fail with one line and exit 1 or 125, and leave the root consistent: what was stored before
still works, and ``system check`` finds nothing it cannot repair."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import require_binary, run_cli, wait_for_network_teardown

pytestmark = pytest.mark.integration

SIZE_MB = 48


@pytest.fixture
def small_root(tmp_path):
    """A Dockerbank root on a 48 MB ext4 filesystem (a loop device), with busybox in it."""
    require_binary("mkfs.ext4")
    image, mount = tmp_path / "disk.img", tmp_path / "small"
    with open(image, "wb") as handle:
        handle.truncate(SIZE_MB << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    mount.mkdir()
    subprocess.run(["mount", "-o", "loop", str(image), str(mount)], check=True, capture_output=True)
    root = mount / "root"
    try:
        run_cli(root, "base-image", "busybox")
        yield root
    finally:
        left = run_cli(root, "ps", "-aq", "--no-trunc", check=False).stdout.decode().split()
        if left:
            run_cli(root, "rm", "-f", *left, check=False)
        wait_for_network_teardown(Path(str(root) + "-run"))
        subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)


def _big_rootfs(path: Path, megabytes: int) -> Path:
    """A rootfs tarball holding ``megabytes`` of incompressible data."""
    with tarfile.open(path, "w") as tar:
        data = os.urandom(megabytes << 20)
        info = tarfile.TarInfo("big.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def _one_line_failure(done: subprocess.CompletedProcess) -> str:
    err = done.stderr.decode()
    assert done.returncode in (1, 125), (done.returncode, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _consistent(root: Path) -> None:
    """What was there before still works, and a repair leaves nothing to report."""
    run_cli(root, "system", "check")
    report = run_cli(root, "system", "check", "--dry-run", check=False)
    assert report.returncode == 0, report.stdout.decode()
    assert b"busybox" in run_cli(root, "images").stdout
    assert run_cli(root, "run", "--rm", "--network", "none", "busybox", "echo", "ok").stdout == b"ok\n"


def test_import_and_load_on_a_full_disk(small_root, tmp_path):
    line = _one_line_failure(run_cli(small_root, "import", str(_big_rootfs(tmp_path / "big.tar", 60)), "big:1",
                                     check=False))
    assert "space" in line.lower(), line
    assert b"big" not in run_cli(small_root, "images").stdout
    _consistent(small_root)


def test_a_volume_filled_by_a_container_and_a_commit(small_root):
    require_binary("conmon")
    run_cli(small_root, "volume", "create", "data")
    run_cli(small_root, "volume", "create", "keep")
    run_cli(small_root, "run", "--rm", "--network", "none", "-v", "keep:/keep", "busybox", "sh", "-c",
            "echo precious > /keep/f")
    # the container's own write fails inside it; the engine records its exit as usual
    filled = run_cli(small_root, "run", "--network", "none", "--name", "filler", "-v", "data:/data", "busybox", "sh",
                     "-c", "dd if=/dev/zero of=/data/fill bs=1M count=200 2>/dev/null; echo done > /top; exit 3",
                     check=False)
    assert filled.returncode == 3, filled.stderr
    committed = run_cli(small_root, "commit", "filler", "filled:1", check=False)
    if committed.returncode != 0:  # the top layer did not fit: one line, no half image
        _one_line_failure(committed)
        assert b"filled" not in run_cli(small_root, "images").stdout
    run_cli(small_root, "rm", "-f", "filler")
    run_cli(small_root, "volume", "rm", "data")
    assert run_cli(small_root, "run", "--rm", "--network", "none", "-v", "keep:/keep", "busybox", "cat",
                   "/keep/f").stdout == b"precious\n"
    _consistent(small_root)


def test_a_backup_into_a_full_repository(small_root, tmp_path):
    require_binary("conmon")
    run_cli(small_root, "volume", "create", "data")
    volume_data = small_root / "volumes" / "data" / "_data"
    # random data in the volume, then a repository on the same small disk that cannot hold a copy
    (volume_data / "a.bin").write_bytes(os.urandom(20 << 20))
    try:
        (volume_data / "b.bin").write_bytes(os.urandom(20 << 20))
    except OSError:
        pass  # the disk took what it could
    repo = small_root.parent / "repo"
    line = _one_line_failure(run_cli(small_root, "backup", "create", "--repo", str(repo), "data",
                                     check=False))
    assert "space" in line.lower(), line
    listing = run_cli(small_root, "backup", "ls", "--repo", str(repo), check=False)
    assert b"data" not in listing.stdout  # no snapshot that a later restore would take as whole
    verify = run_cli(small_root, "backup", "verify", "--repo", str(repo), check=False)
    assert verify.returncode in (0, 1) and b"Traceback" not in verify.stderr
    run_cli(small_root, "volume", "rm", "data")  # room again for the container of the check
    _consistent(small_root)


def test_a_disk_filled_to_the_last_block_can_still_be_freed(small_root):
    """SQLite cannot open its database on a full filesystem (and a write to its mapped WAL index is
    a SIGBUS): the root's reserve file gives way, so the command that frees space works."""
    assert (small_root / "reserve").is_file()
    run_cli(small_root, "volume", "create", "data")
    with pytest.raises(OSError):
        with open(small_root / "volumes" / "data" / "_data" / "fill", "wb") as handle:
            while True:
                handle.write(b"\0" * (1 << 20))
                handle.flush()
    assert run_cli(small_root, "volume", "ls", "-q").stdout == b"data\n"
    run_cli(small_root, "volume", "rm", "data")
    _consistent(small_root)
    assert (small_root / "reserve").is_file()  # taken back once there is room
