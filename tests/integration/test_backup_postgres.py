"""Consistency proven on a real PostgreSQL server under a steady write load (issue 8).

The server is Debian's PostgreSQL 15 of the host (``postgresql`` in scripts/setup.sh), run in
a busybox container that mounts the host's /usr read-only — no image build, no network, a
few seconds per start. Each row carries its own checksum (``h = md5(v)``); a writer inserts
rows without pause while the backup runs. Each backup (``dump`` and ``pause``) is restored
into a fresh root, the server starts there, and every row matches its checksum.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest

from dockerbank.backup.create import CreateOptions, create
from dockerbank.backup.repository import Repository
from dockerbank.backup.restore import RestoreOptions, restore
from dockerbank.config import Config
from dockerbank.engine import Engine
from dockerbank.errors import DockerbankError
from tests.conftest import require_binary, run_cli

PG_BIN = Path("/usr/lib/postgresql/15/bin")
INSERT = "insert into t(v, h) select x, md5(x) from (select md5(random()::text) x) s"


def _engine(root: Path) -> Engine:
    return Engine(Config(root=root, run_root=Path(str(root) + "-run")))


@pytest.fixture
def pg(root, busybox, tmp_path):
    """A running PostgreSQL container ``pg`` (volume ``pgdata``) with a table ``t`` and a writer."""
    require_binary("conmon")
    if not (PG_BIN / "postgres").exists():
        pytest.fail("PostgreSQL 15 is not installed: run scripts/setup.sh --with-tests (package postgresql)")
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\npostgres:x:999:999::/data:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\npostgres:x:999:\n")
    server = ("mkdir -p /data/pg && chown postgres:postgres /data/pg && chmod 700 /data/pg && "
              "exec su postgres -s /bin/sh -c 'test -s /data/pg/PG_VERSION || "
              "initdb -U postgres --auth=trust --no-locale -E UTF8 -D /data/pg >/tmp/initdb.log 2>&1 "
              "|| cat /tmp/initdb.log; exec postgres -D /data/pg -k /tmp -c listen_addresses='")
    run_cli(root, "run", "-d", "--network", "none", "--name", "pg", "-e", "PG_VERSION=15",
            "-e", f"PATH={PG_BIN}:/bin:/usr/bin", "-e", "PGHOST=/tmp", "-e", "PGUSER=postgres",
            "-v", "/usr:/usr:ro", "-v", "/usr/lib:/lib:ro", "-v", "/usr/lib64:/lib64:ro",
            "-v", f"{etc / 'passwd'}:/etc/passwd:ro", "-v", f"{etc / 'group'}:/etc/group:ro",
            "-v", "pgdata:/data", "busybox", "sh", "-c", server)
    _wait_ready(root)
    _sql(root, "create table t (id serial primary key, v text not null, h text not null)")
    run_cli(root, "exec", "-d", "pg", "sh", "-c", f'while psql -qAt -c "{INSERT}"; do :; done')
    engine = _engine(root)
    yield engine
    run_cli(root, "rm", "-f", "pg", check=False)
    engine.close()


def _wait_ready(root: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while run_cli(root, "exec", "pg", "pg_isready", "-q", check=False).returncode != 0:
        if time.monotonic() > deadline:
            logs = run_cli(root, "logs", "pg", check=False)
            pytest.fail(f"PostgreSQL did not start: {logs.stdout.decode()[-800:]} {logs.stderr.decode()[-800:]}")
        time.sleep(0.3)


def _sql(root: Path, query: str) -> str:
    return run_cli(root, "exec", "pg", "psql", "-qAt", "-c", query).stdout.decode().strip()


def _rows(root: Path) -> int:
    return int(_sql(root, "select count(*) from t"))


@pytest.mark.parametrize("mode", ["dump", "pause"])
def test_postgres_under_write_load_restores_consistently(pg, root, tmp_path, mode):
    deadline = time.monotonic() + 30
    while _rows(root) < 50:                              # the writer is busy
        assert time.monotonic() < deadline, "the writer inserts no rows"
        time.sleep(0.2)
    before = _rows(root)
    repo = Repository(tmp_path / "repo")
    report = create(pg, repo, CreateOptions(containers=["pg"], consistency=mode, with_images=True))
    after = _rows(root)
    assert after > before                                # writes went on around the backup
    kinds = sorted(p.kind for p in report.snapshot.parts)
    assert kinds == (["container", "dump", "image"] if mode == "dump" else ["container", "image", "volume"])
    if mode == "pause":
        assert any("PostgreSQL raw files" in w for w in report.warnings)
    other = tmp_path / "other"
    other.mkdir()
    fresh = _engine(other)
    try:
        restore(fresh, repo, "latest", RestoreOptions())
        if mode == "pause":
            run_cli(other, "start", "pg")
        _wait_ready(other)
        total, bad = _sql(other, "select count(*), count(*) filter (where h <> md5(v)) from t").split("|")
        assert int(bad) == 0
        assert before <= int(total) <= after             # every row committed before the backup, none invented
        ids = _sql(other, "select count(*) = max(id) - min(id) + 1 from t")
        assert ids in ("t", "f")                          # the table answers queries (sequence gaps are allowed)
    finally:
        with contextlib.suppress(DockerbankError):
            fresh.containers.remove("pg", force=True)
        fresh.close()
    assert _rows(root) > after                           # the original server writes on
