"""The registry commands as users run them: ``registry serve`` as a process, ``push``/``pull``/``login``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"registry serve exited {proc.returncode}: {proc.stderr.read().decode()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("registry serve did not listen in time")


@pytest.fixture
def env(tmp_path):
    return {"DOCKER_CONFIG": str(tmp_path / "docker-config")}


@pytest.fixture
def serve(root, tmp_path):
    """Start ``dockerbank registry serve`` as a subprocess; returns a function taking extra flags."""
    procs: list[subprocess.Popen] = []

    def start(*flags: str) -> str:
        port = free_port()
        full_env = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run")
        proc = subprocess.Popen(
            [sys.executable, "-m", "dockerbank", "registry", "serve", "--listen", f"127.0.0.1:{port}",
             "--storage", str(tmp_path / "registry"), *flags],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env,
        )
        procs.append(proc)
        wait_for_port(port, proc)
        return f"127.0.0.1:{port}"

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def test_push_pull_cli_between_roots(cli, busybox, serve, tmp_path, env):
    address = serve()
    cli("tag", "busybox:latest", f"{address}/cli/bb:1")
    pushed = cli("push", f"{address}/cli/bb:1", env=env).stdout.decode()
    assert f"The push refers to repository [{address}/cli/bb]" in pushed
    assert "1: digest: sha256:" in pushed
    other = tmp_path / "other-root"
    out = run_cli(other, "pull", "-q", f"{address}/cli/bb:1", env=env).stdout.decode()
    assert out.strip() == f"{address}/cli/bb:1"
    ids = run_cli(other, "images", "-q", "--no-trunc", env=env).stdout.decode().split()
    assert ids == [busybox.id]
    verbose = run_cli(other, "pull", f"{address}/cli/bb:1", env=env).stdout.decode()
    assert "Status: Image is up to date for" in verbose


def test_pull_of_missing_tag_is_one_clear_line(cli, serve, env):
    address = serve()
    result = cli("pull", f"{address}/nothing:here", check=False, env=env)
    err = result.stderr.decode()
    assert result.returncode == 1
    assert err.startswith("Error: ") and "Traceback" not in err and "unknown" in err


def test_unreachable_registry_is_one_clear_line(cli, env):
    result = cli("pull", f"127.0.0.1:{free_port()}/x:1", check=False, env=env)
    err = result.stderr.decode()
    assert result.returncode == 1 and "cannot reach registry" in err and "Traceback" not in err


def test_policy_refusal_names_the_label(cli, busybox_tar, serve, env, root):
    address = serve()
    cli("import", "--change", "LABEL org.dockerbank.redistributable=false", str(busybox_tar), f"{address}/redcap:1")
    result = cli("push", f"{address}/redcap:1", check=False, env=env)
    err = result.stderr.decode()
    assert result.returncode == 1
    assert "org.dockerbank.redistributable=false" in err and "Traceback" not in err
    (Path(root) / "registries.json").write_text(json.dumps({"private": [address]}))
    cli("push", "-q", f"{address}/redcap:1", env=env)


def test_login_logout_with_htpasswd(cli, busybox, serve, tmp_path, env):
    from dockerbank.registry.server.auth import make_htpasswd_line

    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(make_htpasswd_line("bob", "builder", rounds=4) + "\n")
    address = serve("--htpasswd", str(htpasswd))
    cli("tag", "busybox:latest", f"{address}/auth/bb:1")
    refused = cli("push", f"{address}/auth/bb:1", check=False, env=env)
    assert refused.returncode == 1 and "unauthorized" in refused.stderr.decode()
    wrong = cli("login", "-u", "bob", "--password-stdin", address, input=b"nope\n", check=False, env=env)
    assert wrong.returncode == 1 and "unauthorized" in wrong.stderr.decode()
    ok = cli("login", "-u", "bob", "--password-stdin", address, input=b"builder\n", env=env)
    assert ok.stdout.decode().strip() == "Login Succeeded"
    config = json.loads((tmp_path / "docker-config" / "config.json").read_text())
    assert address in config["auths"]
    cli("push", "-q", f"{address}/auth/bb:1", env=env)
    assert cli("logout", address, env=env).stdout.decode().strip() == f"Removing login credentials for {address}"
    assert cli("logout", address, env=env).stdout.decode().strip() == f"Not logged in to {address}"


def test_read_only_serve_and_gc(cli, busybox, serve, tmp_path, env):
    address = serve()
    cli("tag", "busybox:latest", f"{address}/gc/bb:1")
    cli("push", f"{address}/gc/bb:1", env=env)
    storage = tmp_path / "registry"
    out = cli("registry", "gc", "--storage", str(storage), "--dry-run").stdout.decode()
    assert "0 blobs would delete" in out
    read_only = serve("--read-only")
    cli("tag", "busybox:latest", f"{read_only}/gc/other:1")
    refused = cli("push", f"{read_only}/gc/other:1", check=False, env=env)
    assert refused.returncode == 1 and "read-only" in refused.stderr.decode()
