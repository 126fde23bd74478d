"""compose: ``up -d``, ``up -d`` again unchanged and ``down -v`` of a 5-service stack (2 networks,
3 volumes, one ``service_healthy`` dependency): ``dockerbank compose`` against docker-compose 1.29
(Debian's, Python) on dockerd. Both run the same file with the same busybox image, imported
into each engine from the same rootfs tarball (nothing is pulled)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness import Case, Context, host_load, sh

TITLE = "compose: up -d / unchanged up -d / down -v of a 5-service stack"
IMAGE = "dockerbank-bench/busybox:compose"
PROJECT = "benchstack"
TOOLS = ("dockerbank", "docker", "podman", "dockerbank-netavark")
# Dockerbank with the netavark subprocess for networks (DOCKERBANK_NETWORK_BACKEND=netavark) on a root of its
# own; `--tools dockerbank,dockerbank-netavark,docker`
NETAVARK = "dockerbank-netavark"
# podman on this host: runc (crun refuses the hybrid cgroups) and explicit ulimits, as bench/benchmarks/containers.py
PODMAN_CONF = """[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
"""
NOTES = [
    "docker = docker-compose 1.29 (Python) against dockerd 20.10; podman = podman-compose 1.0.3 (Debian's) on "
    "podman 4.3 (runc, explicit ulimits; it starts services one after the other and does not wait for "
    "service_healthy); dockerbank = `dockerbank compose`. "
    "Stack: db (healthcheck every 200 ms, web waits for service_healthy), cache, web, worker, proxy; "
    "networks front and back, volumes dbdata, cachedata, webdata. Containers trap SIGTERM, so stop is quick.",
]

STACK = f"""\
services:
  db:
    image: {IMAGE}
    command: sh -c 'trap "exit 0" TERM; while true; do sleep 0.1; done'
    healthcheck:
      test: ["CMD", "true"]
      interval: 200ms
      retries: 50
    volumes: [dbdata:/data]
    networks: [back]
  cache:
    image: {IMAGE}
    command: sh -c 'trap "exit 0" TERM; while true; do sleep 0.1; done'
    volumes: [cachedata:/data]
    networks: [back]
  web:
    image: {IMAGE}
    command: sh -c 'trap "exit 0" TERM; while true; do sleep 0.1; done'
    depends_on:
      db: {{condition: service_healthy}}
      cache: {{condition: service_started}}
    volumes: [webdata:/srv]
    networks: [back, front]
  worker:
    image: {IMAGE}
    command: sh -c 'trap "exit 0" TERM; while true; do sleep 0.1; done'
    depends_on: [cache]
    networks: [back]
  proxy:
    image: {IMAGE}
    command: sh -c 'trap "exit 0" TERM; while true; do sleep 0.1; done'
    depends_on: [web]
    networks: [front]
volumes:
  dbdata: {{}}
  cachedata: {{}}
  webdata: {{}}
networks:
  front: {{}}
  back: {{}}
"""


@dataclass
class State:
    env: dict
    file: Path
    load_at_start: str = ""


def _compose(tool: str, file: Path, *args: str) -> list[str]:
    if tool in ("dockerbank", NETAVARK):
        return ["dockerbank", "compose", "-f", str(file), "-p", PROJECT, *args]
    if tool == "podman":
        return ["podman-compose", "-f", str(file), "-p", PROJECT, *args]
    return ["docker-compose", "--no-ansi", "-f", str(file), "-p", PROJECT, *args]



def prepare(ctx: Context) -> State:
    from dockerbank.image.baseimage import busybox_rootfs_tar

    work = ctx.work / "compose"
    work.mkdir(parents=True, exist_ok=True)
    rootfs_tar = busybox_rootfs_tar(work / "busybox.tar")
    root = ctx.work / "dockerbank-compose-root"
    conf = work / "containers.conf"
    conf.write_text(PODMAN_CONF)
    env = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run", CONTAINERS_CONF=str(conf))
    file = work / "compose.yaml"
    file.write_text(STACK)
    if "dockerbank" in ctx.tools and root.exists():
        subprocess.run(_compose("dockerbank", file, "down", "-v"), env=env, capture_output=True, check=False)
    shutil.rmtree(root, ignore_errors=True)
    if NETAVARK in ctx.tools:
        shutil.rmtree(str(root) + "-netavark", ignore_errors=True)
    for tool in [t for t in ctx.tools if t in TOOLS]:
        subprocess.run(_compose(tool, file, "down", "-v"), env=_env(tool, env), capture_output=True, check=False)
        sh("dockerbank" if tool == NETAVARK else tool, "import", "--change", 'CMD ["sh"]', str(rootfs_tar), IMAGE,
           env=_env(tool, env))
    state = State(env, file)
    NOTES[1:] = []
    state.load_at_start = host_load()
    return state


def _env(tool: str, env: dict) -> dict:
    """The netavark column: the same CLI on a root of its own with the old network road."""
    if tool != NETAVARK:
        return env
    return dict(env, DOCKERBANK_NETWORK_BACKEND="netavark", DOCKERBANK_ROOT=env["DOCKERBANK_ROOT"] + "-netavark",
                DOCKERBANK_RUNROOT=env["DOCKERBANK_ROOT"] + "-netavark-run")


def cases(ctx: Context, state: State) -> list[Case]:
    out = []
    for tool in [t for t in ctx.tools if t in TOOLS]:
        def up(t=tool):
            sh(*_compose(t, state.file, "up", "-d"), env=_env(t, state.env))

        def down(t=tool):
            sh(*_compose(t, state.file, "down", "-v"), env=_env(t, state.env))

        def ensure_down(t=tool):
            subprocess.run(_compose(t, state.file, "down", "-v"), env=_env(t, state.env), capture_output=True,
                           check=False)

        out += [Case("up -d (5 services)", tool, up, before=ensure_down),
                Case("up -d again, unchanged", tool, up),
                Case("down -v", tool, down)]
    return out


def cleanup(ctx: Context, state: State) -> None:
    for tool in [t for t in ctx.tools if t in TOOLS]:
        subprocess.run(_compose(tool, state.file, "down", "-v"), env=_env(tool, state.env), capture_output=True,
                       check=False)
    NOTES.append(f"host load at start: {state.load_at_start}; at end: {host_load()} (2 CPUs shared with other work)")
