"""push and pull of a ~200 MB image of 5 layers over 127.0.0.1, against two registry servers.

Clients: Dockerbank's, docker's (dockerd 20.10) and skopeo. Servers:
Dockerbank's (``dockerbank registry serve``, a process) and Debian's ``docker-registry``
(distribution 2.8, the seed's ``registry:2``). Run e.g.::

    /opt/dockerbank-venv/bin/python bench/run.py registry --tools dockerbank,docker,skopeo -r 3

Rows are (operation, server); the client ratio of a row compares clients on the same server,
and the server question (is Dockerbank's server as fast as docker-registry for the same
client?) is answered by comparing a column between the two rows of an operation.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import Case, Context, sh

from benchmarks.image_archive import IMAGE, build_archive

TITLE = "Registry: push and pull of a 200 MB image with 5 layers over 127.0.0.1"
# not podman: it keeps the layers of the image it pushed, so its pull would time a cache hit
CLIENTS = ("dockerbank", "docker", "skopeo")
EXTRA_TOOLS = ["skopeo"]  # the peer for registries, joins the default tools when installed
NOTES = [
    (
        "Registry: the image of the archive benchmark (5 layers of random, incompressible bytes). Every push "
        "row starts from an empty registry (restarted on a wiped storage, untimed), so every byte is uploaded; "
        "Dockerbank's client has its compressed-layer cache cleared before each push, so it compresses anew "
        "like docker and skopeo (its gzip stores segments that do not shrink instead of deflating them, which "
        "is what makes it fast on this incompressible data; a later push reuses the compressed blob). Pull "
        "rows pull an image pushed by Dockerbank; docker and Dockerbank pull into an empty store and unpack, "
        "skopeo copies to a `dir:` (download and verify only, no unpacking). Servers run as processes; "
        "docker-registry with access logs off."
    ),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"registry server exited {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("registry server did not start listening")


@dataclass
class Server:
    """A registry server process that can be reset to empty storage."""

    kind: str  # dockerbank | docker-registry
    work: Path
    port: int = 0
    proc: subprocess.Popen | None = None
    seeded: bool = False

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        storage = self.work / "storage"
        self.port = self.port or _free_port()
        log = open(self.work / "server.log", "ab")  # noqa: SIM115 -- the server process keeps it
        if self.kind == "dockerbank":
            cmd = [sys.executable, "-m", "dockerbank", "registry", "serve", "--listen", self.address,
                   "--storage", str(storage)]
        else:
            config = self.work / "config.yml"
            config.write_text(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
                f"http:\n  addr: {self.address}\n"
            )
            cmd = ["docker-registry", "serve", str(config)]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=log)
        _wait_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.proc = None

    def reset(self) -> None:
        """Stop, wipe the storage, start again (same port): an empty registry."""
        self.stop()
        shutil.rmtree(self.work / "storage", ignore_errors=True)
        self.seeded = False
        self.start()


@dataclass
class State:
    archive: Path
    env: dict
    push_root: Path
    pull_root: Path
    servers: list[Server] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)


def _db_env(root: Path, base: dict) -> dict:
    return dict(base, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run")


def prepare(ctx: Context) -> State:
    if shutil.which("docker-registry") is None:
        raise RuntimeError("docker-registry is not installed: scripts/setup.sh --with-tests")
    archive = build_archive(ctx.work)
    base = ctx.work / "registry-bench"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    env = dict(os.environ, DOCKER_CONFIG=str(base / "docker-config"))
    state = State(archive, env, base / "push-root", base / "pull-root",
                  tools=[t for t in ctx.tools if t in CLIENTS])
    sh("dockerbank", "load", "-i", str(archive), env=_db_env(state.push_root, env))
    for kind in ("dockerbank", "docker-registry"):
        folder = base / kind
        folder.mkdir()
        server = Server(kind, folder)
        server.start()
        state.servers.append(server)
    return state


def _drop_gzip_cache(root: Path) -> None:
    """Forget Dockerbank's compressed layer blobs so its push compresses again, like docker's."""
    db = sqlite3.connect(root / "state.db")
    try:
        rows = db.execute("SELECT blob FROM layer_blobs WHERE media_type LIKE '%gzip'").fetchall()
        db.execute("DELETE FROM layer_blobs WHERE media_type LIKE '%gzip'")
        db.commit()
    finally:
        db.close()
    for (blob,) in rows:
        (root / "blobs" / "sha256" / blob.split(":", 1)[1]).unlink(missing_ok=True)


def _docker_image_loaded(state: State) -> None:
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, check=False).returncode != 0:
        sh("docker", "load", "-i", str(state.archive))


def _docker_remove_all(state: State) -> None:
    """Remove every docker image holding the bench layers (else docker pull finds them 'Already exists')."""
    refs = [IMAGE] + [f"{s.address}/bench/{repo}:1" for s in state.servers for repo in ("push", "pull")]
    for ref in refs:
        subprocess.run(["docker", "rmi", "-f", ref], capture_output=True, check=False)


def _push_case(state: State, server: Server, tool: str) -> Case:
    target = f"{server.address}/bench/push:1"
    env = state.env
    db_env = _db_env(state.push_root, env)

    def before() -> None:
        server.reset()
        if tool == "dockerbank":
            _drop_gzip_cache(state.push_root)
            sh("dockerbank", "tag", IMAGE, target, env=db_env)
        elif tool == "docker":
            _docker_image_loaded(state)
            sh("docker", "tag", IMAGE, target)

    def run() -> None:
        if tool == "dockerbank":
            sh("dockerbank", "push", target, env=db_env)
        elif tool == "docker":
            sh("docker", "push", target, env=env)
        else:
            sh("skopeo", "copy", "-q", "--dest-tls-verify=false", f"docker-archive:{state.archive}",
               f"docker://{target}", env=env)

    return Case(f"push → {server.kind}", tool, run, before=before)


def _pull_case(state: State, server: Server, tool: str) -> Case:
    source = f"{server.address}/bench/pull:1"
    env = state.env
    work = server.work / f"pull-{tool}"

    def before() -> None:
        if not server.seeded:
            seed_env = _db_env(state.push_root, env)
            sh("dockerbank", "tag", IMAGE, source, env=seed_env)
            sh("dockerbank", "push", source, env=seed_env)
            server.seeded = True
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(str(work) + "-run", ignore_errors=True)
        if tool == "docker":
            _docker_remove_all(state)

    def run() -> None:
        if tool == "dockerbank":
            sh("dockerbank", "pull", "-q", source, env=_db_env(work, env))
        elif tool == "docker":
            sh("docker", "pull", "-q", source, env=env)
        else:
            sh("skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{source}", f"dir:{work}", env=env)

    return Case(f"pull ← {server.kind}", tool, run, before=before)


def cases(ctx: Context, state: State) -> list[Case]:
    out: list[Case] = []
    for server in state.servers:
        out += [_push_case(state, server, tool) for tool in state.tools]
        out += [_pull_case(state, server, tool) for tool in state.tools]
    return out


def cleanup(ctx: Context, state: State) -> None:
    for server in state.servers:
        server.stop()
    _docker_remove_all(state)
    shutil.rmtree(ctx.work / "registry-bench", ignore_errors=True)
