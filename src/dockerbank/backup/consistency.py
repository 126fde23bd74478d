"""Consistency of a backup of live data: what to do with a running container while its
files are read, and dump recipes for databases.

Modes, per running container that uses what is being saved:

- ``pause`` (default): freeze it (the engine's ``pause``, the cgroup freezer) while reading;
- ``stop``: stop it, read, start it again;
- ``dump``: run its dump command inside it (the engine's ``exec``) and keep the dump instead
  of the raw files of its volumes; a container without a recipe falls back to ``pause``;
- ``none``: read while it runs (a warning says so).

Dump recipes are chosen by the label ``org.dockerbank.backup.dump=<shell command>`` (with
``org.dockerbank.backup.restore=<command reading the dump on stdin>`` and optionally
``org.dockerbank.backup.ready=<command that succeeds when the server accepts work>``), else by
the image name or environment (PostgreSQL, MariaDB/MySQL).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from dockerbank.errors import DockerbankError, RuntimeFailure

MODES = ("pause", "stop", "dump", "none")
#: a container's own mode (``x-dockerbank-backup`` of its compose service sets it): wins over the default
MODE_LABEL = "org.dockerbank.backup.consistency"
DUMP_LABEL = "org.dockerbank.backup.dump"
RESTORE_LABEL = "org.dockerbank.backup.restore"
READY_LABEL = "org.dockerbank.backup.ready"


@dataclass(frozen=True)
class DumpRecipe:
    """How to dump a database in its container, replay the dump, and tell when it is ready."""

    name: str
    dump: str        # shell command writing the dump to stdout
    restore: str     # shell command reading the dump from stdin
    ready: str       # shell command that exits 0 once the server accepts connections


POSTGRES = DumpRecipe(
    "postgresql",
    'pg_dumpall -U "${POSTGRES_USER:-postgres}"',
    'psql -q -v ON_ERROR_STOP=0 -U "${POSTGRES_USER:-postgres}" -d postgres',
    'pg_isready -q -U "${POSTGRES_USER:-postgres}"',
)
MYSQL = DumpRecipe(
    "mysql",
    'exec "$(command -v mariadb-dump || command -v mysqldump)" --all-databases --single-transaction '
    '--routines --events -uroot -p"${MARIADB_ROOT_PASSWORD:-$MYSQL_ROOT_PASSWORD}"',
    'exec "$(command -v mariadb || command -v mysql)" -uroot -p"${MARIADB_ROOT_PASSWORD:-$MYSQL_ROOT_PASSWORD}"',
    '"$(command -v mariadb-admin || command -v mysqladmin)" ping -uroot '
    '-p"${MARIADB_ROOT_PASSWORD:-$MYSQL_ROOT_PASSWORD}"',
)


def mode_of(labels: dict[str, str], default: str) -> str:
    """The consistency mode of one container: its label when that names a mode, else ``default``. Pure."""
    mode = labels.get(MODE_LABEL, "")
    return mode if mode in MODES else default


def recipe_for(image: str, env: list[str], labels: dict[str, str]) -> DumpRecipe | None:
    """The dump recipe of a container (label first, then image name / environment). Pure."""
    if labels.get(DUMP_LABEL):
        return DumpRecipe("label", labels[DUMP_LABEL], labels.get(RESTORE_LABEL, ""), labels.get(READY_LABEL, "true"))
    keys = {item.split("=", 1)[0] for item in env}
    name = image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0].lower()
    if name in ("postgres", "postgresql", "postgis") or "PG_VERSION" in keys or "POSTGRES_PASSWORD" in keys:
        return POSTGRES
    if name in ("mysql", "mariadb", "percona") or keys & {"MYSQL_ROOT_PASSWORD", "MARIADB_ROOT_PASSWORD",
                                                         "MARIADB_VERSION", "MYSQL_VERSION"}:
        return MYSQL
    return None


def looks_like_database(path) -> str | None:
    """Which database's raw files a directory holds ("PostgreSQL", "MySQL"), if any. Pure-ish: reads names."""
    try:
        names = set(os.listdir(path))
    except OSError:
        return None
    if "PG_VERSION" in names or "pg_wal" in names or any(  # PGDATA at the top or one level below
            os.path.exists(os.path.join(path, n, "PG_VERSION")) for n in names):
        return "PostgreSQL"
    if "ibdata1" in names or "mysql" in names and "aria_log_control" in names or "ib_logfile0" in names:
        return "MySQL/MariaDB"
    return None


@contextmanager
def quiesced(engine, container_ids: list[str], mode: str, warnings: list[str], what: str) -> Iterator[None]:
    """Pause or stop the running containers among ``container_ids`` around the block; put
    each back as it was afterwards, even when the block fails."""
    from dockerbank.container import model

    running = []
    for cid in container_ids:
        try:
            container = engine.containers.get(cid)
        except DockerbankError:
            continue
        if container.state.status == model.RUNNING:
            running.append(container)
        elif container.state.status == model.PAUSED:
            continue  # already frozen by its user: read as it is, leave it paused
    if mode == "none":
        for container in running:
            warnings.append(f"container {container.name} uses {what} and was not paused "
                            "(--consistency none): files may be mid-write")
        yield
        return
    done: list = []
    try:
        for container in running:
            if mode == "stop":
                engine.containers.stop(container.id)
            else:
                engine.containers.pause(container.id)
            done.append(container)
        yield
    finally:
        for container in reversed(done):
            try:
                if mode == "stop":
                    engine.containers.start(container.id)
                else:
                    engine.containers.unpause(container.id)
            except DockerbankError as exc:
                warnings.append(f"container {container.name} could not be resumed after the backup: {exc}")


def exec_piped(engine, cid: str, command: str, *, stdout_fd: int, stdin_fd: int | None = None,
               stderr_fd: int | None = None) -> int:
    """Run ``sh -c command`` in a running container through the engine's exec, its stdout into
    ``stdout_fd`` (and ``stdin_fd`` fed to it); the command's exit code."""
    from dockerbank.runtime import conmon

    attachment = engine.containers.exec(cid, ["sh", "-c", command], interactive=stdin_fd is not None)
    err_fd = stderr_fd if stderr_fd is not None else os.open(os.devnull, os.O_WRONLY)
    try:
        if attachment.sock is not None:
            conmon.pump(attachment.sock, stdin_fd=stdin_fd, stdout_fd=stdout_fd, stderr_fd=err_fd, detach_keys=None)
            attachment.sock.close()
        conmon.wait_exit(attachment.work, attachment.conmon_pid, attachment.conmon_start, exit_command=False)
        code = conmon.read_exit(attachment.work)
    finally:
        if stderr_fd is None:
            os.close(err_fd)
        shutil.rmtree(attachment.work, ignore_errors=True)
    return code if code is not None else 255


def run_dump(engine, cid: str, recipe: DumpRecipe, out_fd: int, err_path) -> None:
    """Write the container's dump to ``out_fd``; RuntimeFailure with the dump's stderr when it fails."""
    with open(err_path, "wb") as err:
        code = exec_piped(engine, cid, recipe.dump, stdout_fd=out_fd, stderr_fd=err.fileno())
    if code != 0:
        tail = _tail(err_path)
        raise RuntimeFailure(f"dump command of container {cid[:12]} failed with exit code {code}: {tail}")


def wait_ready(engine, cid: str, recipe: DumpRecipe, timeout: float = 120.0) -> None:
    """Poll the recipe's readiness command until it succeeds."""
    deadline = time.monotonic() + timeout
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        while True:
            code = exec_piped(engine, cid, recipe.ready or "true", stdout_fd=null, stderr_fd=null)
            if code == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeFailure(f"container {cid[:12]} did not become ready for the dump's replay "
                                     f"within {timeout:.0f}s ({recipe.ready!r} exits {code})")
            time.sleep(0.5)
    finally:
        os.close(null)


def replay_dump(engine, cid: str, recipe: DumpRecipe, dump_path, err_path) -> None:
    """Feed a dump file to the recipe's restore command inside the (fresh) database container."""
    if not recipe.restore:
        raise RuntimeFailure(f"no restore command for this dump: label the container with {RESTORE_LABEL}=<command>")
    wait_ready(engine, cid, recipe)
    fd = os.open(dump_path, os.O_RDONLY)
    try:
        with open(err_path, "wb") as err:
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                code = exec_piped(engine, cid, recipe.restore, stdout_fd=null, stdin_fd=fd, stderr_fd=err.fileno())
            finally:
                os.close(null)
    finally:
        os.close(fd)
    if code != 0:
        raise RuntimeFailure(f"replaying the dump into {cid[:12]} failed with exit code {code}: {_tail(err_path)}")


def _tail(path, limit: int = 300) -> str:
    try:
        with open(path, "rb") as fh:
            text = fh.read()[-limit:].decode("utf-8", "replace").strip()
    except OSError:
        return ""
    return " ".join(text.split()) or "(no error output)"
