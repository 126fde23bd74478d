"""A ``dockerbank system service`` on a socket in the test's tmp dir, with its own root (helper
for tests/compat/test_api_*.py): started as the real CLI subprocess, stopped at the end."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


class ApiServer:
    def __init__(self, tmp: Path):
        self.root = tmp / "root"
        self.run_root = tmp / "run"
        self.sock = tmp / "d.sock"
        self.log = tmp / "service.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.sock}"

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ, DOCKER_HOST=self.url, DOCKER_CONFIG=str(self.sock.parent / "docker-config"))
        env.pop("DOCKER_CONTEXT", None)
        env.update(extra)
        return env

    def start(self) -> ApiServer:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dockerbank", "--root", str(self.root), "--runroot", str(self.run_root),
             "system", "service", "--host", self.url], stdout=subprocess.DEVNULL, stderr=open(self.log, "wb"))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"the API service exited: {self.log.read_text()}")
            try:
                with socket.socket(socket.AF_UNIX) as probe:
                    probe.connect(str(self.sock))
                return self
            except OSError:
                time.sleep(0.05)
        pytest.fail("the API service did not listen within 15 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        from conftest import wait_for_network_teardown

        wait_for_network_teardown(self.run_root)

    def dockerbank(self, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dockerbank", "--root", str(self.root), "--runroot",
                               str(self.run_root), *args], input=input, capture_output=True, timeout=120)


def start_server(tmp: Path, busybox_tar: Path | None = None) -> ApiServer:
    server = ApiServer(tmp).start()
    if busybox_tar is not None:
        done = server.dockerbank("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox:latest")
        assert done.returncode == 0, done.stderr
    return server
