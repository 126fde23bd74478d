"""Real mounts and host facts: stale overlay mounts are found and lazily unmounted;
``system info`` facts agree with what the docker daemon reports on the same host."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import require_binary

from dockerbank.host.mounts import is_mounted, overlay_mounts_under, read_mounts, unmount, unmount_all_under
from dockerbank.host.system import collect, render_info, to_api


@pytest.fixture
def overlay(tmp_path):
    """A real overlay mount at <tmp>/containers/c1/merged."""
    base = tmp_path / "containers" / "c1"
    for sub in ("lower", "upper", "work", "merged"):
        (base / sub).mkdir(parents=True)
    (base / "lower" / "f").write_text("x")
    opts = f"lowerdir={base / 'lower'},upperdir={base / 'upper'},workdir={base / 'work'}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(base / "merged")], check=True)
    try:
        yield tmp_path, base
    finally:
        mounted = [m.mount_point for m in read_mounts() if m.mount_point.startswith(str(tmp_path))]
        for mount in sorted(mounted, reverse=True):
            subprocess.run(["umount", "-l", mount], check=False)


def test_stale_overlay_found_and_unmounted_lazily(overlay):
    tmp_path, base = overlay
    found = overlay_mounts_under(tmp_path / "containers")
    assert [m.mount_point for m in found] == [str(base / "merged")]
    assert found[0].super_option("upperdir") == str(base / "upper")
    assert is_mounted(base / "merged")
    # a file kept open does not block a lazy unmount (a busy mount left by a crash)
    with open(base / "merged" / "f") as handle:
        assert unmount(base / "merged", lazy=True)
        assert handle.read() == "x"
    assert not is_mounted(base / "merged")
    assert overlay_mounts_under(tmp_path / "containers") == []
    assert unmount(base / "merged") is False  # nothing mounted any more


def test_unmount_all_under_deepest_first(tmp_path):
    outer = tmp_path / "m"
    outer.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(outer)], check=True)
    try:
        (outer / "inner").mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(outer / "inner")], check=True)
        done = unmount_all_under(tmp_path)
        assert done == [str(outer / "inner"), str(outer)]
        assert not is_mounted(outer)
    finally:
        subprocess.run(["umount", "-R", "-l", str(outer)], check=False, capture_output=True)


def _docker_info() -> dict:
    docker = require_binary("docker")
    proc = subprocess.run([docker, "info", "--format", "{{json .}}"], check=False, capture_output=True,
                          text=True, timeout=30)
    if proc.returncode != 0 or not proc.stdout.strip().startswith("{"):
        pytest.fail(f"docker info failed (start dockerd: `dockerd >/tmp/dockerd.log 2>&1 &`): {proc.stderr}")
    return json.loads(proc.stdout)


def test_system_facts_agree_with_docker_info(tmp_path):
    facts = collect(tmp_path)
    info = _docker_info()
    mine = to_api(facts)
    for key in ("KernelVersion", "OperatingSystem", "OSType", "Architecture", "NCPU", "MemTotal",
                "CgroupDriver", "CgroupVersion"):
        assert mine[key] == info[key], key
    # same backing filesystem as Docker's root when both live on the root filesystem
    if os.stat(tmp_path).st_dev == os.stat(info["DockerRootDir"]).st_dev:
        assert dict(mine["DriverStatus"])["Backing Filesystem"] == dict(info["DriverStatus"])["Backing Filesystem"]
    assert facts.overlay_supported and facts.supports_d_type
    assert facts.runtimes, "no OCI runtime found"
    assert any(line.startswith(" Total Memory: ") for line in render_info(facts))
