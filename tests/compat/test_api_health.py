"""Healthchecks through the Engine API as the docker SDK (docker-py) uses them: the create's
``Healthcheck``, ``State.Health`` passing, failing and in the start period, the list's status
text and ``health`` filter, ``health_status`` events, and docker's refusal of bad durations."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from api_server import sdk_client, start_server
from conftest import require_binary

docker = pytest.importorskip("docker", reason="docker SDK missing: pip install -e .[test]")

pytestmark = pytest.mark.compat

SECOND = 1_000_000_000


@pytest.fixture
def client(tmp_path, busybox_tar):
    yield from sdk_client(tmp_path, busybox_tar, "1.45")


def health(container) -> dict:
    container.reload()
    return container.attrs["State"].get("Health") or {}


def wait_status(container, status: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    seen = set()
    while time.monotonic() < deadline:
        current = health(container)
        seen.add(current.get("Status"))
        if current.get("Status") == status:
            current["seen"] = seen
            return current
        time.sleep(0.1)
    pytest.fail(f"{container.name} did not turn {status} (saw {seen})")


def test_sdk_sees_state_health(client):
    since = int(time.time()) - 1
    run = dict(detach=True, network_mode="none")
    good = client.containers.run("busybox", ["sleep", "300"], name="good", **run,
                                 healthcheck={"test": ["CMD-SHELL", "echo fine"], "interval": SECOND})
    bad = client.containers.run("busybox", ["sleep", "300"], name="bad", **run,
                                healthcheck={"test": ["CMD", "false"], "interval": SECOND, "retries": 2})
    # docker-py has no start_interval: in the start period the probe runs every 5 s (docker's
    # default start interval), so the first probe (at 5 s) fails unseen and the second passes
    slow = client.containers.run("busybox", ["sh", "-c", "sleep 7; touch /ready; sleep 300"], name="slow", **run,
                                 healthcheck={"test": ["CMD", "test", "-f", "/ready"], "interval": 30 * SECOND,
                                              "start_period": 60 * SECOND, "retries": 1})
    assert good.attrs["Config"]["Healthcheck"] == {"Test": ["CMD-SHELL", "echo fine"], "Interval": SECOND}
    passed = wait_status(good, "healthy")
    assert passed["FailingStreak"] == 0 and passed["Log"][-1]["Output"] == "fine\n"
    failed = wait_status(bad, "unhealthy")
    assert failed["FailingStreak"] >= 2 and failed["Log"][-1]["ExitCode"] == 1
    started = wait_status(slow, "healthy")
    assert "unhealthy" not in started["seen"] and any(e["ExitCode"] == 1 for e in started["Log"])

    statuses = {c["Names"][0]: c["Status"] for c in client.api.containers()}
    assert statuses["/good"].endswith("(healthy)") and statuses["/bad"].endswith("(unhealthy)")
    assert [c.name for c in client.containers.list(filters={"health": "unhealthy"})] == ["bad"]
    with pytest.raises(docker.errors.APIError, match="Unrecognised filter value for health"):
        client.containers.list(filters={"health": "fine"})
    changes = [(e["Actor"]["Attributes"]["name"], e["Action"])
               for e in client.events(since=since, until=int(time.time()) + 1, decode=True,
                                      filters={"event": "health_status"})]
    assert ("good", "health_status: healthy") in changes and ("bad", "health_status: unhealthy") in changes
    assert ("slow", "health_status: unhealthy") not in changes


def test_create_refuses_what_docker_refuses(client):
    with pytest.raises(docker.errors.APIError, match="Interval in Healthcheck cannot be less than 1ms"):
        client.containers.create("busybox", ["true"], healthcheck={"test": ["CMD", "true"], "interval": 10})
    with pytest.raises(docker.errors.APIError, match="Retries in Healthcheck cannot be negative"):
        client.containers.create("busybox", ["true"], healthcheck={"test": ["CMD", "true"], "retries": -1})
    assert client.containers.list(all=True) == []


CLIENTS = [p for p in ("/usr/bin/docker", "/usr/local/bin/docker") if os.path.exists(p)]


@pytest.mark.parametrize("binary", CLIENTS or ["docker"])
def test_docker_cli_health_flags_ps_and_inspect(binary, tmp_path, busybox_tar):
    if not os.path.exists(binary):
        binary = require_binary("docker")
    server = start_server(tmp_path, busybox_tar)

    def docker_cli(*args: str) -> str:
        done = subprocess.run([binary, *args], capture_output=True, timeout=60, env=server.env())
        assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr.decode()}"
        return done.stdout.decode()

    try:
        docker_cli("run", "-d", "--name", "checked", "--network", "none", "--health-cmd", "echo fine",
                   "--health-interval", "1s", "--health-retries", "2", "busybox", "sleep", "300")
        docker_cli("run", "-d", "--name", "plain", "--network", "none", "--no-healthcheck", "busybox", "sleep", "300")
        deadline = time.monotonic() + 30
        while docker_cli("inspect", "-f", "{{.State.Health.Status}}", "checked").strip() != "healthy":
            assert time.monotonic() < deadline, "checked did not turn healthy"
            time.sleep(0.2)
        assert docker_cli("ps", "--filter", "name=checked", "--format", "{{.Status}}").strip().endswith("(healthy)")
        assert docker_cli("ps", "--filter", "health=healthy", "--format", "{{.Names}}").split() == ["checked"]
        assert docker_cli("ps", "--filter", "health=none", "--format", "{{.Names}}").split() == ["plain"]
        log = json.loads(docker_cli("inspect", "-f", "{{json .State.Health.Log}}", "checked"))
        assert log[-1]["ExitCode"] == 0 and log[-1]["Output"] == "fine\n"
        assert json.loads(docker_cli("inspect", "-f", "{{json .Config.Healthcheck}}", "checked")) == {
            "Test": ["CMD-SHELL", "echo fine"], "Interval": SECOND, "Retries": 2}
        assert docker_cli("inspect", "-f", "{{json .Config.Healthcheck}}", "plain").strip() == '{"Test":["NONE"]}'
    finally:
        subprocess.run([binary, "rm", "-f", "checked", "plain"], capture_output=True, env=server.env())
        server.stop()
