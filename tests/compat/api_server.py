"""A ``dockerbank system service`` on a socket in the test's tmp dir, with its own root (helper
for tests/compat/test_api_*.py): started as the real CLI subprocess, stopped at the end."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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


def sdk_client(tmp: Path, busybox_tar: Path, version: str, after: Callable | None = None) -> Iterator:
    """The body of a ``client`` fixture: a docker SDK client (``version`` of the API) on a fresh
    service with busybox imported, its ``server`` attribute the service. At the end every container
    is removed, then ``after(sdk)`` runs (e.g. to remove the test's networks), the client is closed
    and the service stopped. Use as ``yield from sdk_client(...)``."""
    import docker  # the test modules skip (importorskip) when the SDK is missing

    server = start_server(tmp, busybox_tar)
    sdk = docker.DockerClient(base_url=server.url, version=version, timeout=60)
    sdk.server = server
    yield sdk
    for container in sdk.containers.list(all=True):
        container.remove(force=True)
    if after is not None:
        after(sdk)
    sdk.close()
    server.stop()
