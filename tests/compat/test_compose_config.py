"""``dockerbank compose config`` against docker-compose 1.29's normalisation of the same files
(Debian's docker-compose, which needs no daemon for ``config``)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from conftest import require_binary

pytestmark = pytest.mark.compat

MAIN = """\
services:
  web:
    image: "busybox:${TAG:-latest}"
    command: httpd -f -p ${PORT}
    env_file: web.env
    environment:
      - A=1
      - B
    ports: ["8080:80", "9000", "127.0.0.1:8000-8001:80-81/udp", "53:53/udp"]
    expose: [80, "90"]
    depends_on:
      db:
        condition: service_healthy
      cache:
        condition: service_started
    volumes: ["data:/data", "./site:/site:ro", "/anon"]
    networks:
      front:
        aliases: [www]
      back: {}
    restart: unless-stopped
    deploy:
      resources:
        limits: {cpus: "0.5", memory: 64M}
    secrets: [pw]
    labels: {a: b}
    dns: 8.8.8.8
    tmpfs: /run
    stop_grace_period: 3s
    x-dockerbank-backup: pause
  db:
    extends: base
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 1s
      retries: 30
    networks: [back]
    volumes:
      - type: volume
        source: dbdata
        target: /var/lib/db
  cache:
    image: busybox
    depends_on: [db]
    command: ["sh", "-c", "echo $$HOME"]
    profiles: [cache]
  base:
    image: busybox
    environment: {X: 1}
    labels: [team=lab]
volumes:
  data: {}
  dbdata:
networks:
  front:
  back:
    internal: true
secrets:
  pw:
    file: ./pw.txt
"""

OVERRIDE = """\
services:
  web:
    command: ["httpd", "-f"]
    ports: ["8443:443"]
    environment: [A=2]
"""


def _normalised(argv: list[str], cwd) -> dict:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=60, env={"PATH": "/usr/bin:/bin", "PORT": "81"})
    assert done.returncode == 0, done.stderr.decode()
    return yaml.safe_load(done.stdout)


@pytest.mark.parametrize("files, profile", [(["compose.yaml"], "cache"),
                                            (["compose.yaml", "override.yaml"], "cache")])
def test_config_matches_docker_compose_1_29(tmp_path, files, profile):
    compose = require_binary("docker-compose")
    (tmp_path / "compose.yaml").write_text(MAIN)
    (tmp_path / "override.yaml").write_text(OVERRIDE)
    (tmp_path / "web.env").write_text("E=2\nA=0\n")
    (tmp_path / ".env").write_text("TAG=1.36\n")
    (tmp_path / "pw.txt").write_text("secret\n")
    (tmp_path / "site").mkdir()
    args = [a for f in files for a in ("-f", f)] + (["--profile", profile] if profile else [])
    theirs = _normalised([compose, *args, "config"], tmp_path)
    ours = _normalised([sys.executable, "-m", "dockerbank", "compose", *args, "config"], tmp_path)
    # the Compose Specification keeps x-* in services; 1.29 drops them when it merges files
    assert ours["services"]["web"]["x-dockerbank-backup"] == "pause"
    assert _comparable(ours) == _comparable(theirs)


def _comparable(doc: dict) -> dict:
    """A config with what differs only in form made equal: the order of lists that 1.29 sorts
    when it merges files (the specification appends) and 1.29's str() of merged ``expose``."""
    for svc in doc["services"].values():
        for key in [k for k in svc if k.startswith("x-")]:
            del svc[key]
        for key in ("ports", "expose", "volumes", "dns"):
            if key in svc:
                svc[key] = sorted(str(item) for item in svc[key])
    return doc


def test_docker_compose_sees_the_project_dockerbank_compose_started(tmp_path, busybox_tar):
    """Labels compatible with docker-compose 1.29: ``docker-compose ps`` over the API lists the
    containers ``dockerbank compose up`` made, and its ``down`` removes them."""
    from api_server import start_server

    compose = require_binary("docker-compose")
    server = start_server(tmp_path, busybox_tar)
    project = tmp_path / "proj"
    project.mkdir()
    (project / "docker-compose.yml").write_text(
        "services:\n  web:\n    image: busybox\n    command: sh -c 'trap \"exit 0\" TERM; while true; do sleep 0.2; done'\n"
        "    networks: [back]\nnetworks:\n  back: {}\n")

    def ours(*args: str) -> str:
        done = server.dockerbank("compose", "-f", str(project / "docker-compose.yml"), "-p", "shared", *args)
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode()

    def theirs(*args: str) -> str:
        done = subprocess.run([compose, "-p", "shared", "--no-ansi", *args], cwd=project, capture_output=True,
                              timeout=120, env=server.env())
        assert done.returncode == 0, f"docker-compose {' '.join(args)}: {done.stderr.decode()}"
        return done.stdout.decode() + done.stderr.decode()

    try:
        ours("up", "-d")
        listing = theirs("ps")
        assert "shared_web_1" in listing and " Up " in listing
        assert "shared_web_1" in ours("ps")
        theirs("down")
        assert ours("ps", "-q").strip() == ""
        assert "shared_back" not in server.dockerbank("network", "ls").stdout.decode()
    finally:
        server.dockerbank("compose", "-f", str(project / "docker-compose.yml"), "-p", "shared", "down")
        server.stop()
