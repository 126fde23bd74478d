"""Shared fixtures: an isolated Dockerbank root per test and locally built base images."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from dockerbank.config import Config
from dockerbank.engine import Engine

# Tarballs that are slow to make (the debootstrap rootfs) are cached here between runs;
# tests never depend on the cache existing.
CACHE_DIR = Path(os.environ.get("DOCKERBANK_TEST_CACHE", "/var/cache/dockerbank-test"))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A fresh, empty Dockerbank root."""
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def config(root: Path, tmp_path: Path) -> Config:
    return Config(root=root, run_root=tmp_path / "run")


@pytest.fixture
def engine(config: Config):
    eng = Engine(config)
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory) -> Path:
    """A busybox-static rootfs tarball (deterministic: same bytes every run)."""
    from dockerbank.image.baseimage import busybox_rootfs_tar

    return busybox_rootfs_tar(tmp_path_factory.mktemp("busybox") / "rootfs.tar")


@pytest.fixture
def busybox(engine, busybox_tar):
    """The busybox image imported into the test's root, tagged busybox:latest."""
    from dockerbank.image.importer import import_rootfs

    with open(busybox_tar, "rb") as handle:
        return import_rootfs(engine.images, handle, "busybox:latest", ('CMD ["sh"]',))


@pytest.fixture(scope="session")
def debian_tar() -> Path:
    """A Debian bookworm minbase rootfs tarball made by debootstrap, cached across runs."""
    from dockerbank.image.baseimage import debian_rootfs_tar

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path = CACHE_DIR / "debian-bookworm-minbase.tar"
    if not path.exists():
        debian_rootfs_tar(path)
    return path


def run_cli(root: Path, *args: str, input: bytes | None = None, check: bool = True, timeout: int = 120,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the dockerbank CLI as a subprocess against ``root`` (the e2e way users run it)."""
    full_env = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run")
    full_env.update(env or {})
    result = subprocess.run(
        [sys.executable, "-m", "dockerbank", *args],
        input=input, capture_output=True, timeout=timeout, env=full_env,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"dockerbank {' '.join(args)} exited {result.returncode}\n"
            f"stdout: {result.stdout.decode(errors='replace')}\nstderr: {result.stderr.decode(errors='replace')}"
        )
    return result


@pytest.fixture
def cli(root: Path):
    """``cli('images', '-q')`` runs the CLI against the test's root."""

    def call(*args: str, **kwargs) -> subprocess.CompletedProcess:
        return run_cli(root, *args, **kwargs)

    return call


def require_binary(name: str) -> str:
    """Path of a tool a test needs; a missing tool fails the test loudly (never a silent skip)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run scripts/setup.sh --with-tests")
    return path
