"""Dockerfile build: a 5-step Dockerfile that copies a 50 MB file, cold and fully cached.

Every tool builds the same context on the same busybox base (imported into each tool under
one name). ``cold`` builds with ``--no-cache`` (every step done anew); ``cached`` rebuilds
after a previous build, so every step is taken from the cache. docker uses its legacy
builder (DOCKER_BUILDKIT=0), the one whose output and cache Dockerbank follows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness import Case, Context, sh

TITLE = "Dockerfile build: 5 steps with a 50 MB COPY, cold and cached"
BASE = "dockerbank-bench/busybox:build"
IMAGE = "dockerbank-bench/build:latest"
SIZE = 50 * 1000 * 1000
DOCKERFILE = f"""\
FROM {BASE}
ENV APP=/srv/app
WORKDIR /srv/app
COPY big.bin ./
CMD ["ls", "-l", "/srv/app"]
"""
NOTES = [
    "Build: FROM + ENV + WORKDIR + COPY of a 50 MB random file + CMD (no RUN: the rows compare the builders, "
    "not container start-up). `cold` = `build --no-cache`; `cached` = the same build again, every step from the cache. "
    "docker runs with DOCKER_BUILDKIT=0 and sends the 50 MB context to dockerd; Dockerbank reads the context "
    "in place and hashes the copied file for its cache key; podman builds with buildah's layer cache.",
]


@dataclass
class State:
    ctx_dir: Path
    root: Path
    env: dict


def prepare(ctx: Context) -> State:
    from dockerbank.image.baseimage import busybox_rootfs_tar

    work = ctx.work / "build"
    shutil.rmtree(work, ignore_errors=True)
    context_dir = work / "context"
    context_dir.mkdir(parents=True)
    (context_dir / "Dockerfile").write_text(DOCKERFILE)
    with open(context_dir / "big.bin", "wb") as handle:
        handle.write(os.urandom(SIZE))
    rootfs = busybox_rootfs_tar(work / "busybox.tar")
    root = ctx.work / "dockerbank-build-root"
    shutil.rmtree(root, ignore_errors=True)
    env = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run", DOCKER_BUILDKIT="0")
    for tool in ctx.tools:
        subprocess.run([tool, "rmi", "-f", IMAGE, BASE], env=env, capture_output=True)
        sh(tool, "import", "--change", 'CMD ["sh"]', str(rootfs), BASE, env=env)
    return State(context_dir, root, env)


def _build(tool: str, state: State, *extra: str):
    args = [tool, "build", "-q", *extra, "-t", IMAGE, str(state.ctx_dir)]
    if tool == "podman":
        args.insert(2, "--layers")
    return lambda: sh(*args, env=state.env)


def cases(ctx: Context, state: State) -> list[Case]:
    out: list[Case] = []
    for tool in ctx.tools:
        out.append(Case("build cold (--no-cache)", tool, _build(tool, state, "--no-cache")))
    for tool in ctx.tools:
        out.append(Case("build fully cached", tool, _build(tool, state), before=_build(tool, state)))
    return out


def cleanup(ctx: Context, state: State) -> None:
    for tool in ctx.tools:
        subprocess.run([tool, "rmi", "-f", IMAGE, BASE], env=state.env, capture_output=True)
    subprocess.run(["podman", "image", "prune", "-f"], capture_output=True)
    subprocess.run(["docker", "image", "prune", "-f"], capture_output=True)
    shutil.rmtree(state.root, ignore_errors=True)
    shutil.rmtree(str(state.root) + "-run", ignore_errors=True)
    shutil.rmtree(ctx.work / "build", ignore_errors=True)
