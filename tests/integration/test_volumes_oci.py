"""The OCI mount entries of mounts.to_oci_mounts, run for real by runc in a busybox bundle:
a named volume filled by copy-up, data surviving the container, read-only binds and tmpfs options."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import require_binary

from dockerbank.volume import mounts

pytestmark = pytest.mark.integration


@pytest.fixture
def bundle(tmp_path, busybox_tar):
    """A runc bundle whose rootfs is busybox plus an image directory /srv/app with content."""
    runc = require_binary("runc")
    if os.geteuid() != 0:
        pytest.fail("running a container needs root")
    path = tmp_path / "bundle"
    rootfs = path / "rootfs"
    rootfs.mkdir(parents=True)
    with tarfile.open(busybox_tar) as tar:
        tar.extractall(rootfs)  # our own busybox tarball
    (rootfs / "srv" / "app").mkdir(parents=True)
    (rootfs / "srv" / "app" / "seed.txt").write_text("from the image\n")
    os.chown(rootfs / "srv" / "app", 1000, 1000)
    subprocess.run([runc, "spec"], cwd=path, check=True)
    os.rename(path / "config.json", path / "config.base.json")
    return path


def run(bundle: Path, tmp_path: Path, oci_mounts: list[dict], script: str) -> subprocess.CompletedProcess:
    config = json.loads((bundle / "config.base.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = ["sh", "-c", script]
    config["mounts"] += oci_mounts
    for kind in ("bounding", "effective", "permitted"):  # docker's default set has these; runc's spec not
        config["process"]["capabilities"][kind] += ["CAP_DAC_OVERRIDE", "CAP_CHOWN", "CAP_FOWNER"]
    (bundle / "config.json").write_text(json.dumps(config))
    name = f"dbvol-{os.getpid()}-{len(list(tmp_path.iterdir()))}"
    return subprocess.run(["runc", "--root", str(tmp_path / "runc-state"), "run", "--bundle", str(bundle), name],
                          capture_output=True, text=True, timeout=60, check=False)


def test_volume_copy_up_and_persistence_through_runc(engine, bundle, tmp_path):
    host_dir = tmp_path / "host-config"
    host_dir.mkdir()
    (host_dir / "app.conf").write_text("debug=0\n")
    specs = mounts.parse_all(["appdata:/srv/app", f"{host_dir}:/etc/app:ro"],
                             ["type=tmpfs,dst=/scratch,tmpfs-size=8m"], ["/run/app:exec,size=1m"])
    specs = mounts.merge_image_volumes(specs, {"/var/log/app": {}})
    cid = "a" * 64
    resolved = []
    for spec in specs:
        if spec.type == "volume":
            if spec.anonymous:
                vol = engine.volumes.create(anonymous=True, attach_to=cid)
                spec = mounts.MountSpec.from_dict({**spec.to_dict(), "source": vol.name})
            else:
                vol, _ = engine.volumes.ensure(spec.source, attach_to=cid)
            engine.volumes.populate_if_empty(vol.name, bundle / "rootfs" / spec.target.lstrip("/"))
            resolved.append(engine.volumes.resolve(spec))
        elif spec.type == "bind":
            resolved.append(mounts.resolve_bind(spec))
        else:
            resolved.append(mounts.resolve_tmpfs(spec))
    oci = mounts.to_oci_mounts(resolved)

    result = run(bundle, tmp_path, oci, """
        cat /srv/app/seed.txt; stat -c '%u' /srv/app
        echo written-in-container > /srv/app/new.txt
        cat /etc/app/app.conf; echo x > /etc/app/app.conf || echo ro-refused
        grep -E ' /scratch | /run/app ' /proc/mounts
        echo log > /var/log/app/one.log
    """)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == ["from the image", "1000", "debug=0"]
    assert "ro-refused" in lines
    scratch = next(line for line in lines if " /scratch " in line)
    assert "nosuid" in scratch and "nodev" in scratch and "noexec" in scratch and "size=8192k" in scratch
    run_app = next(line for line in lines if " /run/app " in line)
    assert "noexec" not in run_app and "size=1024k" in run_app
    assert (host_dir / "app.conf").read_text() == "debug=0\n"

    # the container is gone; its data is not (seed 000: user data outlives the application)
    engine.volumes.detach(cid)
    assert (engine.volumes.data_dir("appdata") / "new.txt").read_text() == "written-in-container\n"
    anon = [v for v in engine.volumes.list() if v.anonymous]
    assert len(anon) == 1 and (Path(anon[0].mountpoint) / "one.log").read_text() == "log\n"

    # a new container with the same named volume sees the data, and no copy-up overwrites it
    assert engine.volumes.populate_if_empty("appdata", bundle / "rootfs" / "srv" / "app") is False
    again = mounts.to_oci_mounts([engine.volumes.resolve(mounts.parse_volume("appdata:/data:ro"))])
    result = run(bundle, tmp_path, again, "cat /data/new.txt; touch /data/z || echo ro-volume")
    assert result.stdout.splitlines() == ["written-in-container", "ro-volume"], result.stderr
