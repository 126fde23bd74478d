"""Consistency proven on a real PostgreSQL server under a steady write load (issue 8).

The server runs in a container of ``dockerbank-test/postgres``: Debian bookworm made by
``dockerbank base-image debian`` (debootstrap) plus Debian's PostgreSQL 15 installed by apt in
``dockerbank build`` (the ``postgres_image_archive`` fixture, cached as a ``save`` archive).
It runs as the ``postgres`` user on a named volume. Each row carries its own checksum
(``h = md5(v)``); a writer commits rows one by one without pause while two backups run, one in ``dump``
mode (``pg_dumpall`` inside the container) and one in ``pause`` mode (raw files, the container
frozen). Each backup is restored into its own fresh root (which gets only the image, loaded
from the archive), the server starts there, and every row matches its checksum.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from dockerbank.backup.create import CreateOptions, create
from dockerbank.backup.repository import Repository
from dockerbank.backup.restore import RestoreOptions, restore
from dockerbank.config import Config
from dockerbank.engine import Engine
from dockerbank.errors import DockerbankError
from tests.conftest import POSTGRES_IMAGE, require_binary, run_cli

INSERT = "insert into t(v, h) select x, md5(x) from (select md5(random()::text) x) s"
# the write load: one session committing one row at a time, ~200 rows a second, until stopped
WRITER = f"do $$ begin loop {INSERT}; commit; perform pg_sleep(0.005); end loop; end $$"
# initdb on the first start (an empty volume), then the server in the foreground, as postgres
SERVER = ("mkdir -p /data/pg && chown postgres:postgres /data/pg && chmod 700 /data/pg && "
          "exec setpriv --reuid=postgres --regid=postgres --init-groups sh -c '"
          "test -s /data/pg/PG_VERSION || initdb -U postgres --auth=trust --no-locale -E UTF8 -D /data/pg "
          ">/tmp/initdb.log 2>&1 || cat /tmp/initdb.log; exec postgres -D /data/pg -k /tmp -c listen_addresses='")
ENV = ["-e", "PATH=/usr/lib/postgresql/15/bin:/usr/sbin:/usr/bin:/sbin:/bin", "-e", "PGHOST=/tmp",
       "-e", "PGUSER=postgres"]


def _engine(root: Path) -> Engine:
    return Engine(Config(root=root, run_root=Path(str(root) + "-run")))


def _wait_ready(root: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while run_cli(root, "exec", "pg", "pg_isready", "-q", check=False).returncode != 0:
        if time.monotonic() > deadline:
            logs = run_cli(root, "logs", "pg", check=False)
            raise AssertionError(f"PostgreSQL did not start: {logs.stdout.decode()[-800:]} "
                                 f"{logs.stderr.decode()[-800:]}")
        time.sleep(0.3)


def _sql(root: Path, query: str) -> str:
    return run_cli(root, "exec", "pg", "psql", "-qAt", "-c", query).stdout.decode().strip()


def _rows(root: Path) -> int:
    return int(_sql(root, "select count(*) from t"))


def _restore_and_check(repo: Repository, snapshot_id: str, other: Path, archive: Path, mode: str,
                       before: int, after: int) -> None:
    """Restore one snapshot into the fresh root ``other``, start the server, check every row."""
    other.mkdir()
    run_cli(other, "load", "-i", str(archive), timeout=600)       # the image only: no container, no volume
    fresh = _engine(other)
    try:
        result = restore(fresh, repo, snapshot_id, RestoreOptions())
        if mode == "dump":
            assert any(kind == "dump" and what.startswith("pg (postgresql:") for kind, what in result.restored)
        else:
            assert fresh.volumes.inspect("pgdata")                # the raw files came back
            run_cli(other, "start", "pg")
        _wait_ready(other)
        total, bad = _sql(other, "select count(*), count(*) filter (where h <> md5(v)) from t").split("|")
        assert int(bad) == 0, f"{mode}: {bad} rows fail their checksum"
        assert before <= int(total) <= after, f"{mode}: {total} rows, expected {before}..{after}"
        # the restored server takes writes again
        _sql(other, INSERT)
        assert _rows(other) == int(total) + 1
    finally:
        with contextlib.suppress(DockerbankError):
            fresh.containers.remove("pg", force=True)
        fresh.close()


def test_postgres_under_write_load_restores_consistently(root, tmp_path, postgres_image_archive):
    require_binary("conmon")
    run_cli(root, "load", "-i", str(postgres_image_archive), timeout=600)
    run_cli(root, "run", "-d", "--network", "none", "--name", "pg", *ENV, "-v", "pgdata:/data",
            POSTGRES_IMAGE, "sh", "-c", SERVER)
    engine = _engine(root)
    try:
        _wait_ready(root)
        assert _sql(root, "show server_version").startswith("15.")
        _sql(root, "create table t (id serial primary key, v text not null, h text not null)")
        run_cli(root, "exec", "-d", "pg", "psql", "-qAt", "-c", WRITER)
        deadline = time.monotonic() + 30
        while _rows(root) < 50:                                   # the writer is busy
            assert time.monotonic() < deadline, "the writer inserts no rows"
            time.sleep(0.2)
        repo = Repository(tmp_path / "repo")
        taken = {}
        for mode in ("dump", "pause"):
            before = _rows(root)
            report = create(engine, repo, CreateOptions(containers=["pg"], consistency=mode))
            after = _rows(root)
            assert after > before, f"{mode}: no writes went on around the backup"
            kinds = sorted(p.kind for p in report.snapshot.parts)
            assert kinds == (["container", "dump"] if mode == "dump" else ["container", "volume"])
            if mode == "pause":
                assert any("PostgreSQL raw files" in w for w in report.warnings)
            taken[mode] = (report.snapshot.id, before, after)
        for mode, (snapshot_id, before, after) in taken.items():
            _restore_and_check(repo, snapshot_id, tmp_path / f"fresh-{mode}", postgres_image_archive, mode,
                               before, after)
        assert _rows(root) > taken["pause"][2]                   # the original server writes on
    finally:
        run_cli(root, "rm", "-f", "pg", check=False)
        engine.close()
