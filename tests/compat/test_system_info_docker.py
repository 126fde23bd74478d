"""``system info`` facts agree with what the docker daemon reports on the same host."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import require_binary

from dockerbank.host.system import collect, render_info, to_api


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
