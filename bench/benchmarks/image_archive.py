"""save and load of a ~200 MB image of 5 layers: Dockerbank vs docker vs podman.

The image is made here from random (incompressible) data, as one docker-archive that every
tool loads: 5 layers of 4 files x 10 MB. ``save`` writes a docker-archive to a file;
``load`` reads that archive after the image was removed (so every layer is really stored).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from harness import Case, Context, sh

TITLE = "Image archives: save and load of a 200 MB image with 5 layers"
IMAGE = "dockerbank-bench/archive:200mb"
LAYERS = 5
FILES_PER_LAYER = 4
FILE_SIZE = 10 * 1000 * 1000
NOTES = [
    "Image archives: 5 layers x 4 files x 10 MB of random bytes (incompressible); every tool loads the same "
    "docker-archive; `load` rows remove the image first (untimed) so every layer is stored anew; "
    "`save` rows write a docker-archive to a file on the same disk. All tools are timed as CLI processes "
    "(Python start-up included for Dockerbank). Dockerbank keeps each layer twice (the blob, for save, and "
    "the unpacked tree) and does not fsync them; the harness runs an untimed `sync` before every timing. "
    "Dockerbank's load copies the blob in a second thread (copy_file_range) while it unpacks and hashes the "
    "same bytes; its save sends stored blobs to the archive with sendfile.",
]


@dataclass
class State:
    archive: Path
    root: Path
    env: dict


def _layer(path: Path, index: int) -> str:
    """Write one layer tar of random files; return its diff ID."""
    with tarfile.open(path, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo(f"layer{index}")
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        archive.addfile(info)
        for number in range(FILES_PER_LAYER):
            info = tarfile.TarInfo(f"layer{index}/data{number}.bin")
            info.size = FILE_SIZE
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(os.urandom(FILE_SIZE)))
    with open(path, "rb") as handle:
        return "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()


def build_archive(work: Path) -> Path:
    """The benchmark image as a docker-archive (kept between runs: it is only input)."""
    archive = work / "image-200mb.tar"
    if archive.exists():
        return archive
    build = work / "build"
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir(parents=True)
    diff_ids, layer_paths = [], []
    for index in range(LAYERS):
        layer_dir = build / f"layer{index}"
        layer_dir.mkdir()
        diff_ids.append(_layer(layer_dir / "layer.tar", index))
        layer_paths.append(f"layer{index}/layer.tar")
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2026-01-01T00:00:00Z", "created_by": f"bench layer {i}"} for i in range(LAYERS)],
    }, separators=(",", ":")).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    (build / config_name).write_bytes(config)
    (build / "manifest.json").write_text(json.dumps([{"Config": config_name, "RepoTags": [IMAGE],
                                                       "Layers": layer_paths}]))
    partial = work / "image-200mb.tar.partial"
    subprocess.run(["tar", "-C", str(build), "-cf", str(partial), "."], check=True)
    os.rename(partial, archive)
    shutil.rmtree(build)
    return archive


def prepare(ctx: Context) -> State:
    archive = build_archive(ctx.work)
    root = ctx.work / "dockerbank-root"
    shutil.rmtree(root, ignore_errors=True)
    env = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run")
    for tool in ctx.tools:
        _remove(tool, env)
        sh(tool, "load", "-i", str(archive), env=env)
    return State(archive, root, env)


def _remove(tool: str, env: dict) -> None:
    """Remove the image by ID, every tag of it: another tag (left by the registry bench, say)
    would keep its layers and make the next load a cache hit."""
    found = subprocess.run([tool, "image", "inspect", "--format", "{{.Id}}", IMAGE], env=env, capture_output=True,
                           text=True)
    ref = found.stdout.strip() if found.returncode == 0 and found.stdout.strip() else IMAGE
    subprocess.run([tool, "rmi", "-f", ref], env=env, capture_output=True)


def _rm(path: Path):
    return lambda: path.unlink(missing_ok=True)


def cases(ctx: Context, state: State) -> list[Case]:
    out: list[Case] = []
    for tool in ctx.tools:
        target = ctx.work / f"saved-{tool}.tar"
        out.append(Case("save (docker-archive)", tool, lambda t=tool, p=target: sh(t, "save", "-o", str(p), IMAGE,
                                                                                  env=state.env),
                        before=_rm(target), after=_rm(target)))
    for tool in ctx.tools:
        out.append(Case("load (docker-archive)", tool,
                        lambda t=tool: sh(t, "load", "-i", str(state.archive), env=state.env),
                        before=lambda t=tool: _remove(t, state.env)))
    return out


def cleanup(ctx: Context, state: State) -> None:
    for tool in ctx.tools:
        _remove(tool, state.env)
    subprocess.run(["podman", "image", "prune", "-f"], capture_output=True)
    shutil.rmtree(state.root, ignore_errors=True)
    shutil.rmtree(str(state.root) + "-run", ignore_errors=True)
