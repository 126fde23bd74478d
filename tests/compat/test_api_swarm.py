"""What Dockerbank does not have, as a docker engine outside any swarm answers it: the swarm
endpoints through the docker SDK and both docker CLIs (messages as dockerd 20.10 gives them on
this machine), plugins as an engine with none."""

from __future__ import annotations

import os
import subprocess

import pytest
from api_server import start_server

docker = pytest.importorskip("docker", reason="docker SDK missing: pip install -e .[test]")

pytestmark = pytest.mark.compat

NOT_A_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect '
                 'this node to swarm and try again.')
CLIENTS = [p for p in ("/usr/bin/docker", "/usr/local/bin/docker") if os.path.exists(p)]


@pytest.fixture
def server(tmp_path):
    server = start_server(tmp_path)
    yield server
    server.stop()


def test_swarm_endpoints_answer_503_and_plugins_none(server):
    sdk = docker.DockerClient(base_url=server.url, version="1.41", timeout=30)
    calls = [sdk.swarm.reload, sdk.services.list, lambda: sdk.services.get("web"), sdk.nodes.list, sdk.api.tasks,
             sdk.secrets.list, lambda: sdk.secrets.create(name="s", data=b"x"), sdk.configs.list,
             lambda: sdk.services.create("busybox", name="web"), lambda: sdk.api.update_swarm(version=1)]
    for call in calls:
        with pytest.raises(docker.errors.APIError) as refused:
            call()
        assert (refused.value.status_code, refused.value.explanation) == (503, NOT_A_MANAGER)
    with pytest.raises(docker.errors.APIError) as left:
        sdk.swarm.leave()
    assert (left.value.status_code, left.value.explanation) == (503, "This node is not part of a swarm")
    with pytest.raises(docker.errors.APIError) as init:
        sdk.swarm.init()
    assert init.value.status_code == 501 and "no swarm mode" in init.value.explanation
    assert sdk.info()["Swarm"]["LocalNodeState"] == "inactive"
    assert sdk.plugins.list() == []
    checkpoints = sdk.api._get(sdk.api._url("/containers/{0}/checkpoints", "x"))
    assert checkpoints.status_code == 501 and "checkpoints are not supported" in checkpoints.json()["message"]
    with pytest.raises(docker.errors.NotFound, match='plugin "x" not found'):
        sdk.plugins.get("x")
    sdk.close()


@pytest.mark.skipif(not CLIENTS, reason="no docker CLI on this machine (scripts/setup.sh installs docker.io)")
def test_docker_clis_print_dockerds_swarm_errors(server):
    for binary in CLIENTS:
        for args in (["service", "ls"], ["node", "ls"], ["secret", "ls"], ["config", "ls"], ["stack", "ls"]):
            done = subprocess.run([binary, *args], capture_output=True, text=True, env=server.env(), timeout=30)
            assert (done.returncode, done.stderr.strip()) == (1, f"Error response from daemon: {NOT_A_MANAGER}"), \
                (binary, args)
        done = subprocess.run([binary, "plugin", "ls"], capture_output=True, text=True, env=server.env(), timeout=30)
        assert done.returncode == 0 and done.stdout.split() == ["ID", "NAME", "DESCRIPTION", "ENABLED"]
