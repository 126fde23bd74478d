"""docker-compose 1.29 (Debian's, Python) running a two-service stack with a named volume and a
network against ``dockerbank system service``."""

from __future__ import annotations

import subprocess
import time

import pytest
from api_server import start_server
from conftest import require_binary

pytestmark = pytest.mark.compat

STACK = """\
version: "3.8"
services:
  web:
    image: busybox
    command: sh -c 'echo hello-web > /data/index.html; httpd -f -p 80 -h /data'
    volumes:
      - data:/data
    networks: [back]
  worker:
    image: busybox
    command: sh -c 'echo worker-up; while true; do wget -qO- http://web/ && echo reached-web; sleep 0.5; done'
    networks: [back]
    depends_on: [web]
volumes:
  data: {}
networks:
  back: {}
"""


def test_compose_up_ps_logs_scale_down(tmp_path, busybox_tar):
    compose = require_binary("docker-compose")
    server = start_server(tmp_path, busybox_tar)
    project = tmp_path / "proj"
    project.mkdir()
    (project / "docker-compose.yml").write_text(STACK)

    def run(*args: str) -> str:
        done = subprocess.run([compose, "-p", "stack", "--no-ansi", *args], cwd=project, capture_output=True,
                              timeout=120, env=server.env())
        assert done.returncode == 0, f"docker-compose {' '.join(args)}: {done.stderr.decode()}"
        return done.stdout.decode()

    try:
        run("up", "-d")
        ps = run("ps")
        assert "stack_web_1" in ps and "stack_worker_1" in ps and ps.count(" Up ") == 2
        deadline = time.monotonic() + 20
        logs = ""
        while "reached-web" not in logs and time.monotonic() < deadline:
            time.sleep(0.5)
            logs = run("logs", "--no-color", "worker")
        assert "worker-up" in logs and "hello-web" in logs and "reached-web" in logs  # name resolution on the network
        run("up", "-d", "--scale", "worker=2")
        assert "stack_worker_2" in run("ps")
        run("down", "-v")
        listing = subprocess.run(["docker", "ps", "-aq"], capture_output=True, env=server.env(), timeout=30)
        assert listing.stdout.strip() == b""
        volumes = server.dockerbank("volume", "ls", "-q").stdout.decode()
        assert "stack_data" not in volumes
        networks = server.dockerbank("network", "ls", "--format", "{{.Name}}").stdout.decode()
        assert "stack_back" not in networks
    finally:
        subprocess.run([compose, "-p", "stack", "down", "-v", "-t", "1"], cwd=project, capture_output=True,
                       timeout=120, env=server.env())
        server.stop()
