"""Which volume or bind mount holds a container path (container.fileops.mount_holding, pure)."""

from __future__ import annotations

from dockerbank.container.fileops import mount_holding
from dockerbank.volume.mounts import MountSpec

MOUNTS = [MountSpec("volume", "/data", "vol").to_dict(), MountSpec("volume", "/data/inner", "v2").to_dict(),
          MountSpec("bind", "/etc/app.conf", "/srv/app.conf").to_dict(), MountSpec("tmpfs", "/run").to_dict()]


def test_innermost_mount_and_the_rest_of_the_path():
    assert mount_holding(MOUNTS, "/data/f.txt")[1] == "/f.txt"
    assert mount_holding(MOUNTS, "/data/f.txt")[0].source == "vol"
    spec, rest = mount_holding(MOUNTS, "/data/inner/x/")
    assert (spec.source, rest) == ("v2", "/x/")
    assert mount_holding(MOUNTS, "/data")[1] == "/"
    assert mount_holding(MOUNTS, "/data/")[1] == "/"
    assert mount_holding(MOUNTS, "/data/.")[1] == "/."
    assert mount_holding(MOUNTS, "/data/sub/..//f")[1] == "/f"
    assert mount_holding(MOUNTS, "/etc/app.conf")[0].source == "/srv/app.conf"


def test_paths_outside_mounts_and_in_a_tmpfs_stay_in_the_rootfs():
    assert mount_holding(MOUNTS, "/database/x") == (None, "/database/x")
    assert mount_holding(MOUNTS, "/run/x") == (None, "/run/x")
    assert mount_holding([], "/tmp/.") == (None, "/tmp/.")
