"""``dockerbank compose`` on real stacks: dependencies, convergence (unchanged ``up`` recreates
nothing, a changed service is recreated alone), scale up and down, ``down -v``, and bad input
or a failing service leaving nothing half-created."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

# PID 1 of a container ignores SIGTERM unless it traps it: trap it, so stop is quick
LOOP = "sh -c 'trap \"exit 0\" TERM; echo {name}-up; while true; do sleep 0.2; done'"

STACK = f"""\
services:
  db:
    image: busybox
    command: {LOOP.format(name="db")}
    volumes: [data:/data]
    networks: [back]
  migrate:
    image: busybox
    command: sh -c 'sleep 0.5; echo migrated > /data/migrated'
    volumes: [data:/data]
    depends_on: [db]
    networks: [back]
  web:
    image: busybox
    command: {LOOP.format(name="web")}
    depends_on:
      db: {{condition: service_started}}
      migrate: {{condition: service_completed_successfully}}
    volumes: [data:/data:ro, /cache]
    networks:
      back: {{aliases: [www]}}
      front: {{}}
volumes:
  data: {{}}
networks:
  back: {{}}
  front: {{}}
"""


def _containers(cli, project: str) -> dict[str, dict]:
    """name -> {id, status} of the project's containers (by the compose labels)."""
    out = cli("ps", "-a", "--no-trunc", "--filter", f"label=com.docker.compose.project={project}",
              "--format", "{{.ID}} {{.Names}} {{.State}}").stdout.decode().split("\n")
    return {name: {"id": cid, "state": state} for cid, name, state in (line.split() for line in out if line)}


def _inspect(cli, ref: str) -> dict:
    return json.loads(cli("inspect", ref).stdout)[0]


def test_up_orders_dependencies_converges_scales_and_goes_down(ctr, tmp_path):
    project = tmp_path / "shop"
    project.mkdir()
    file = project / "compose.yaml"
    file.write_text(STACK)
    compose = ("compose", "-f", str(file))

    ctr(*compose, "up", "-d")
    first = _containers(ctr, "shop")
    assert set(first) == {"shop_db_1", "shop_migrate_1", "shop_web_1"}
    assert first["shop_web_1"]["state"] == "running" and first["shop_migrate_1"]["state"] == "exited"
    web, migrate = _inspect(ctr, "shop_web_1"), _inspect(ctr, "shop_migrate_1")
    assert web["State"]["StartedAt"] > migrate["State"]["FinishedAt"]  # started after it completed
    assert ctr("exec", "shop_web_1", "cat", "/data/migrated").stdout == b"migrated\n"
    assert ctr("exec", "shop_db_1", "ping", "-c1", "-W2", "www").returncode == 0  # alias on the network
    assert set(web["NetworkSettings"]["Networks"]) == {"shop_back", "shop_front"}
    labels = web["Config"]["Labels"]
    assert labels["com.docker.compose.service"] == "web" and labels["com.docker.compose.oneoff"] == "False"

    ctr(*compose, "up", "-d")  # unchanged: no container is recreated
    again = _containers(ctr, "shop")
    assert {n: c["id"] for n, c in again.items()} == {n: c["id"] for n, c in first.items()}

    ctr(*compose, "up", "-d", "--scale", "web=3")
    scaled = _containers(ctr, "shop")
    assert {"shop_web_2", "shop_web_3"} <= set(scaled) and scaled["shop_web_1"]["id"] == first["shop_web_1"]["id"]
    ctr(*compose, "up", "-d", "--scale", "web=1")
    assert "shop_web_2" not in _containers(ctr, "shop") and "shop_web_3" not in _containers(ctr, "shop")

    ctr("exec", "shop_web_1", "sh", "-c", "echo kept > /cache/file")
    volumes_before = set(ctr("volume", "ls", "-q").stdout.split())
    file.write_text(STACK.replace("echo web-up", "echo web-up-v2"))
    ctr(*compose, "up", "-d")  # only web changed: only web is recreated
    changed = _containers(ctr, "shop")
    assert changed["shop_web_1"]["id"] != first["shop_web_1"]["id"]
    # its anonymous volume is carried over to the new container, not replaced by an empty one
    assert ctr("exec", "shop_web_1", "cat", "/cache/file").stdout == b"kept\n"
    assert set(ctr("volume", "ls", "-q").stdout.split()) == volumes_before
    assert changed["shop_db_1"]["id"] == first["shop_db_1"]["id"]
    logs = ctr(*compose, "logs", "web").stdout.decode()
    assert "shop_web_1  | web-up-v2" in logs

    ps = ctr(*compose, "ps").stdout.decode()
    assert "shop_web_1" in ps and "shop_db_1" in ps
    ctr(*compose, "stop", "web")
    assert _containers(ctr, "shop")["shop_web_1"]["state"] == "exited"
    ctr(*compose, "start")
    assert _containers(ctr, "shop")["shop_web_1"]["state"] == "running"

    ctr(*compose, "down", "-v")
    assert _containers(ctr, "shop") == {}
    assert ctr("volume", "ls", "-q").stdout == b""  # the anonymous ones went with their containers
    assert "shop_" not in ctr("network", "ls").stdout.decode()
    assert "shop_data" not in ctr("volume", "ls").stdout.decode()


def test_bad_file_creates_nothing(ctr, tmp_path):
    file = tmp_path / "compose.yaml"
    file.write_text("services:\n  web:\n    image: busybox\n    networks: [back]\n    depends_on: [nope]\n"
                    "networks:\n  back: {}\n")
    done = ctr("compose", "-f", str(file), "up", "-d", check=False)
    assert done.returncode == 1
    err = done.stderr.decode().strip()
    assert err == f"Error: {file}: services.web.depends_on.nope: undefined service 'nope'"
    assert ctr("ps", "-aq").stdout == b"" and "_back" not in ctr("network", "ls").stdout.decode()


def test_failing_service_reports_what_started_and_leaves_no_half_created_container(ctr, tmp_path):
    file = tmp_path / "compose.yaml"
    file.write_text(f"services:\n  db:\n    image: busybox\n    command: {LOOP.format(name='db')}\n"
                    "  web:\n    image: busybox\n    command: /no/such/binary\n    depends_on: [db]\n")
    done = ctr("compose", "-f", str(file), "-p", "half", "up", "-d", check=False)
    assert done.returncode != 0
    err = done.stderr.decode().strip().splitlines()[-1]
    assert err.startswith("Error: service web: ") and "started: db; not started: web" in err
    assert set(_containers(ctr, "half")) == {"half_db_1"}
    ctr("compose", "-f", str(file), "-p", "half", "down")
    assert _containers(ctr, "half") == {}


def test_web_starts_only_after_the_database_is_healthy(ctr, tmp_path):
    """A slow database: its healthcheck passes once it has touched a file on a shared volume, 3 s
    after it starts; web depends on it with service_healthy and looks for the file as it starts."""
    file = tmp_path / "compose.yaml"
    file.write_text("""\
services:
  db:
    image: busybox
    command: sh -c 'trap "exit 0" TERM; sleep 3; touch /shared/ready; while true; do sleep 0.2; done'
    volumes: [shared:/shared]
    healthcheck:
      test: ["CMD", "test", "-f", "/shared/ready"]
      interval: 500ms
      retries: 30
  web:
    image: busybox
    command: sh -c 'trap "exit 0" TERM; test -f /shared/ready && echo saw-ready || echo too-early; while true; do sleep 0.2; done'
    volumes: [shared:/shared]
    depends_on:
      db: {condition: service_healthy}
volumes:
  shared: {}
""")
    ctr("compose", "-f", str(file), "-p", "slow", "up", "-d")
    assert _inspect(ctr, "slow_db_1")["State"]["Health"]["Status"] == "healthy"
    logs = ctr("compose", "-f", str(file), "-p", "slow", "logs", "web").stdout.decode()
    assert "saw-ready" in logs and "too-early" not in logs  # web started after db was healthy
    assert "(healthy)" in ctr("compose", "-f", str(file), "-p", "slow", "ps").stdout.decode()
    ctr("compose", "-f", str(file), "-p", "slow", "down", "-v")


def test_backup_of_a_stack_uses_each_services_consistency_mode(ctr, tmp_path):
    """``x-dockerbank-backup`` becomes a label; ``backup create --stack PROJECT`` stops the service
    that asks for ``stop`` and reads the one that asks for ``none`` while it runs."""
    file = tmp_path / "compose.yaml"
    file.write_text(f"""\
services:
  db:
    image: busybox
    command: {LOOP.format(name="db")}
    volumes: [dbdata:/data]
    x-dockerbank-backup: stop
  app:
    image: busybox
    command: {LOOP.format(name="app")}
    volumes: [appdata:/data]
    x-dockerbank-backup: none
volumes:
  dbdata: {{}}
  appdata: {{}}
""")
    ctr("compose", "-f", str(file), "-p", "lab", "up", "-d")
    assert _inspect(ctr, "lab_db_1")["Config"]["Labels"]["org.dockerbank.backup.consistency"] == "stop"
    db_started, app_started = (_inspect(ctr, n)["State"]["StartedAt"] for n in ("lab_db_1", "lab_app_1"))
    done = ctr("backup", "create", "--stack", "lab", "--repo", str(tmp_path / "repo"))
    report = (done.stdout + done.stderr).decode()
    assert "lab_app_1 uses volume lab_appdata and was not paused" in report
    db, app = _inspect(ctr, "lab_db_1"), _inspect(ctr, "lab_app_1")
    assert db["State"]["Running"] and db["State"]["StartedAt"] != db_started  # stopped and started again
    assert app["State"]["StartedAt"] == app_started
    ctr("compose", "-f", str(file), "-p", "lab", "down", "-v")


def test_build_push_and_pull_through_a_registry(ctr, cli, server, tmp_path):
    """``compose push`` sends the images the file builds, ``compose pull`` fetches every service's
    image on another root; a missing image is one error line (exit 1) unless failures are ignored."""
    from tests.conftest import run_cli

    registry = server.address
    ctr("tag", "busybox", f"{registry}/lab/db:1")
    ctr("push", "-q", f"{registry}/lab/db:1")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM busybox\nRUN echo built > /built\n")
    (tmp_path / "compose.yaml").write_text(
        f"services:\n  app:\n    build: ./app\n    image: {registry}/lab/app:1\n"
        f"  db:\n    image: {registry}/lab/db:1\n")
    ctr("compose", "build", cwd=tmp_path)
    pushed = ctr("compose", "push", cwd=tmp_path)
    assert f"Pushing app ({registry}/lab/app:1)" in pushed.stderr.decode() + pushed.stdout.decode()

    other = tmp_path / "elsewhere"
    run_cli(other, "compose", "pull", cwd=tmp_path)
    images = run_cli(other, "images", "--format", "{{.Repository}}:{{.Tag}}").stdout.decode().split()
    assert sorted(images) == [f"{registry}/lab/app:1", f"{registry}/lab/db:1"]
    built = run_cli(other, "run", "--rm", "--network", "none", f"{registry}/lab/app:1", "cat", "/built")
    assert built.stdout == b"built\n"

    (tmp_path / "compose.yaml").write_text(
        f"services:\n  gone:\n    image: {registry}/lab/nothing:1\n  db:\n    image: {registry}/lab/db:1\n")
    failed = run_cli(other, "compose", "pull", cwd=tmp_path, check=False)
    err = failed.stderr.decode()
    assert failed.returncode == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("Error: gone: ")
    ignored = run_cli(other, "compose", "pull", "--ignore-pull-failures", cwd=tmp_path, check=False)
    assert ignored.returncode == 0 and "gone: " in ignored.stderr.decode()
