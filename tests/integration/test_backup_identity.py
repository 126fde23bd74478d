"""``restore`` of a ``--all`` backup keeps what docker users refer to: container IDs (unless the
original still holds its ID on this host) and image parents (``commit``/``build``)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from dockerbank.backup.create import CreateOptions, create
from dockerbank.backup.repository import Repository
from dockerbank.backup.restore import RestoreOptions, restore
from dockerbank.config import Config
from dockerbank.engine import Engine
from dockerbank.errors import DockerbankError
from tests.conftest import require_binary, run_cli

pytestmark = pytest.mark.integration


def _engine(root: Path) -> Engine:
    return Engine(Config(root=root, run_root=Path(str(root) + "-run")))


@pytest.fixture
def engines(root, busybox, tmp_path):
    made = [_engine(root), _engine(tmp_path / "other")]
    yield made
    for engine in made:
        for container in engine.containers.list():
            with contextlib.suppress(DockerbankError):
                engine.containers.remove(container.id, force=True)
        engine.close()


def _cli(root: Path, *args: str) -> str:
    return run_cli(root, *args).stdout.decode().strip()


def test_restore_all_keeps_container_ids_and_image_parents(engines, root, tmp_path):
    require_binary("conmon")
    eng, fresh = engines
    _cli(root, "run", "--network", "none", "--name", "done", "busybox", "sh", "-c", "echo x > /x")
    stopped = _cli(root, "inspect", "-f", "{{.Id}}", "done")
    running = _cli(root, "run", "-d", "--network", "none", "--name", "busy", "busybox", "sleep", "300")
    child = _cli(root, "commit", "done", "child:1")
    base = eng.images.resolve("busybox").id
    assert eng.images.parent_of(child) == base
    create(eng, Repository(tmp_path / "repo"), CreateOptions(all=True))
    restore(fresh, Repository(tmp_path / "repo"), "latest", RestoreOptions())
    assert fresh.containers.get("done").id == stopped          # docker's ID, as before
    assert fresh.containers.get("busy").id != running          # the original still runs here: a new one
    assert fresh.images.parent_of(child) == base
    assert _cli(fresh.config.root, "start", "-a", "done") == ""  # restored as it was, and it runs
