"""HTTP throughput through a published port: busybox httpd in a container, curl on 127.0.0.1.

Each tool runs ``busybox httpd`` in a container whose port 80 is published on
127.0.0.1:<port>; the timed run fetches a 10 MB file 20 times over one curl process. Time per
round is the measure (lower = more throughput). Dockerbank uses ``dockerbank run -d -p`` when
its CLI has ``run``; before that, its network layer (netavark) with httpd joined to the
container's network namespace — the same data path (veth + DNAT), no rootfs.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import Case, Context, sh

TITLE = "HTTP through a published port: 10 MB file x 20 over 127.0.0.1"
IMAGE = "dockerbank-bench/busybox:net"
FILE_SIZE = 10 * 1000 * 1000
FETCHES = 20
NOTES = [
    ("busybox httpd serves a 10 MB random file from a read-only bind mount; curl fetches it 20 times over one "
    "connection per file to 127.0.0.1:<published port>. docker forwards 127.0.0.1 through docker-proxy (its "
    "userland proxy, the default); Dockerbank and podman use netavark's iptables DNAT in the kernel. "
    "The dockerbank row runs `dockerbank run -d -p` (a build without `run` falls back to its network layer "
    "with the host's busybox httpd joined to the container's network namespace: the same veth + DNAT path)."),
]


@dataclass
class Server:
    port: int
    stop: list = field(default_factory=list)   # callables that undo the start


@dataclass
class State:
    servers: dict[str, Server]
    work: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if subprocess.run(["curl", "-s", "-o", "/dev/null", "--fail", "--max-time", "2",
                           f"http://127.0.0.1:{port}/big"], check=False).returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing serves http://127.0.0.1:{port}/big")


def _start_engine(tool: str, www: Path, env: dict, rootfs: Path) -> Server:
    port = _free_port()
    name = "dockerbank-bench-net-" + secrets.token_hex(4)
    subprocess.run([tool, "rm", "-f", name], env=env, capture_output=True, check=False)
    if subprocess.run([tool, "image", "inspect", IMAGE], env=env, capture_output=True, check=False).returncode != 0:
        sh(tool, "import", "--change", 'CMD ["sh"]', str(rootfs), IMAGE, env=env)
    # podman: crun cannot run on this hybrid-cgroup host and its default rlimits exceed the hard ones
    extra = ["--runtime", "runc", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"] if tool == "podman" else []
    sh(tool, "run", "-d", *extra, "--name", name, "-p", f"127.0.0.1:{port}:80", "-v", f"{www}:/www:ro", IMAGE,
       "httpd", "-f", "-p", "80", "-h", "/www", env=env)
    return Server(port, [lambda: subprocess.run([tool, "rm", "-f", name], env=env, capture_output=True, check=False)])


def _start_network_layer(www: Path, root: Path) -> Server:
    from dockerbank.config import Config
    from dockerbank.engine import Engine
    from dockerbank.network.ports import parse_publish
    from dockerbank.network.service import AttachRequest

    port = _free_port()
    engine = Engine(Config(root, Path(str(root) + "-run")))
    container_id = secrets.token_hex(32)
    settings = engine.networks.attach(AttachRequest(container_id, "bench-httpd", ["bridge"],
                                                    parse_publish(f"127.0.0.1:{port}:80")))
    proc = subprocess.Popen(["nsenter", f"--net={settings['SandboxKey']}", "busybox", "httpd", "-f", "-p", "80",
                             "-h", str(www)])

    def stop() -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        engine.networks.detach(container_id)
        engine.close()

    return Server(port, [stop])


def prepare(ctx: Context) -> State:
    from dockerbank.image.baseimage import busybox_rootfs_tar

    work = ctx.work / "network"
    shutil.rmtree(work, ignore_errors=True)
    www = work / "www"
    www.mkdir(parents=True)
    (www / "big").write_bytes(os.urandom(FILE_SIZE))
    rootfs = busybox_rootfs_tar(work / "busybox.tar")
    root = ctx.work / "dockerbank-network-root"
    env = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run")
    servers: dict[str, Server] = {}
    try:
        for tool in ctx.tools:
            if tool == "dockerbank":
                has_run = subprocess.run([sys.executable, "-m", "dockerbank", "run", "--help"], env=env,
                                         capture_output=True, check=False).returncode == 0
                servers[tool] = _start_engine(tool, www, env, rootfs) if has_run else _start_network_layer(www, root)
            else:
                servers[tool] = _start_engine(tool, www, env, rootfs)
            try:
                _wait(servers[tool].port)
            except RuntimeError as exc:
                raise RuntimeError(f"{tool}: {exc}") from exc
    except BaseException:
        cleanup(ctx, State(servers, work))
        raise
    return State(servers, work)


def _fetch(port: int):
    url = f"http://127.0.0.1:{port}/big"
    args = ["curl", "-s", "--fail"]
    for _ in range(FETCHES):
        args += [url, "-o", "/dev/null"]
    return lambda: sh(*args)


def cases(ctx: Context, state: State) -> list[Case]:
    return [Case("HTTP 200 MB via -p 127.0.0.1", tool, _fetch(server.port)) for tool, server in state.servers.items()]


def cleanup(ctx: Context, state: State) -> None:
    for server in state.servers.values():
        for stop in server.stop:
            stop()
