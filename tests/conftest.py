"""Shared fixtures: an isolated Dockerbank root per test and locally built base images."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
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


@pytest.fixture
def other_engine(tmp_path):
    """A second, empty Dockerbank root (another host pulling what was pushed)."""
    eng = Engine(Config(root=tmp_path / "root2", run_root=tmp_path / "run2"))
    yield eng
    eng.close()


@pytest.fixture
def server(tmp_path):
    """Dockerbank's registry server on 127.0.0.1 (a thread), with its own storage."""
    from dockerbank.registry.server.app import start_in_thread
    from dockerbank.registry.server.storage import RegistryStorage

    running = start_in_thread(RegistryStorage(tmp_path / "registry"))
    yield running
    running.stop()


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


# PostgreSQL on the debootstrap Debian, for the backup consistency test. apt runs in the
# build's RUN (host network: Debian's mirror from the image's sources.list); the step drops
# what the test does not need (apt's caches, docs, locales, the JIT's LLVM, the package's own cluster),
# so that loading the cached archive into a root stays quick.
POSTGRES_IMAGE = "dockerbank-test/postgres"
POSTGRES_DOCKERFILE = """FROM debian
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-15 \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/lib/postgresql/15/main /etc/postgresql/15/main \\
      /usr/share/doc /usr/share/man /usr/share/locale /usr/lib/postgresql/15/lib/llvmjit* \\
      /usr/lib/postgresql/15/lib/bitcode /usr/lib/x86_64-linux-gnu/libLLVM* /usr/lib/x86_64-linux-gnu/libz3*
"""


@pytest.fixture(scope="session")
def postgres_image_archive(tmp_path_factory) -> Path:
    """A ``dockerbank save`` archive of ``dockerbank-test/postgres`` (Debian bookworm by
    ``base-image debian`` + PostgreSQL 15 by apt in ``dockerbank build``), cached in CACHE_DIR
    under the Dockerfile's hash: loaded when present, built and saved when not (a few minutes)."""
    import fcntl
    import hashlib

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(POSTGRES_DOCKERFILE.encode()).hexdigest()[:16]
    path = CACHE_DIR / f"postgres-{key}.tar"
    with open(CACHE_DIR / "postgres.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # concurrent test sessions build it once
        if path.exists():
            return path
        work = tmp_path_factory.mktemp("postgres-image")
        build_root, context = work / "root", work / "context"
        build_root.mkdir()
        context.mkdir()
        (context / "Dockerfile").write_text(POSTGRES_DOCKERFILE)
        run_cli(build_root, "base-image", "debian", "--cache", str(CACHE_DIR), timeout=1800)
        run_cli(build_root, "build", "-q", "-t", POSTGRES_IMAGE, str(context), timeout=1800)
        partial = path.with_name(path.name + ".partial")
        run_cli(build_root, "save", "-o", str(partial), POSTGRES_IMAGE, timeout=600)
        os.replace(partial, path)
    return path


def run_cli(root: Path, *args: str, input: bytes | None = None, check: bool = True, timeout: int = 120,
            env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the dockerbank CLI as a subprocess against ``root`` (the e2e way users run it)."""
    full_env = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run")
    full_env.update(env or {})
    result = subprocess.run(
        [sys.executable, "-m", "dockerbank", *args],
        input=input, capture_output=True, timeout=timeout, env=full_env, cwd=cwd,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"dockerbank {' '.join(args)} exited {result.returncode}\n"
            f"stdout: {result.stdout.decode(errors='replace')}\nstderr: {result.stderr.decode(errors='replace')}"
        )
    return result


@pytest.fixture
def cli(root: Path):
    """``cli('images', '-q')`` runs the CLI against the test's root.

    Containers a test leaves (a failed assertion before its ``rm -f``) are removed afterwards,
    so no runaway container outlives its test and loads the machine for the ones after it.
    """

    def call(*args: str, **kwargs) -> subprocess.CompletedProcess:
        return run_cli(root, *args, **kwargs)

    yield call
    remove_containers(root)


def remove_containers(root: Path) -> None:
    """Remove the pods and containers (with their anonymous volumes) a test left in ``root``, then
    wait for their network teardown: the end of a fixture that hands out a root."""
    if (root / "state.db").exists():
        if _has_pods(root / "state.db"):  # pods take their infra containers along (rm refuses those)
            run_cli(root, "pod", "rm", "-a", "-f", "-t", "0", check=False)
        left = run_cli(root, "ps", "-aq", "--no-trunc", check=False).stdout.decode().split()
        if left:
            run_cli(root, "rm", "-f", "-v", *left, check=False)
    wait_for_network_teardown(Path(str(root) + "-run"))


@pytest.fixture
def ctr(cli, busybox):
    """The CLI against a root holding busybox, for container tests (``cli`` removes what they leave)."""
    require_binary("conmon")
    return cli


def _has_pods(db: Path) -> bool:
    """Whether the root records a pod (one query, not a CLI start per test)."""
    import sqlite3

    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        return conn.execute("SELECT 1 FROM pods LIMIT 1").fetchone() is not None
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def wait_for_network_teardown(run_root: Path, timeout: float = 15.0) -> None:
    """Network teardown runs in a detached process after a container ends; let it finish before
    the test's directories go, or its pinned namespace stays mounted in a deleted directory."""
    import time

    netns = run_root / "netns"
    deadline = time.time() + timeout
    while netns.is_dir() and any(netns.iterdir()) and time.time() < deadline:
        time.sleep(0.05)


def require_binary(name: str) -> str:
    """Path of a tool a test needs; a missing tool fails the test loudly (never a silent skip)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run scripts/setup.sh --with-tests")
    return path


def until(check, timeout: float = 20.0, interval: float = 0.02) -> bool:
    """Whether ``check()`` came true within ``timeout`` seconds, polled every ``interval``
    (tests wait on states, never on fixed sleeps)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return bool(check())


def signal_and_wait(proc: subprocess.Popen, signum: int, bound: float, what: str) -> tuple[int, float]:
    """Send ``signum`` to ``proc``, which must end within ``bound`` seconds (else it is killed and
    the test fails, naming ``what``); its exit code and how long it took."""
    import time

    started = time.monotonic()
    proc.send_signal(signum)
    try:
        code = proc.wait(timeout=bound)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"{what} still ran {bound} s after {signal.Signals(signum).name}") from None
    return code, time.monotonic() - started
