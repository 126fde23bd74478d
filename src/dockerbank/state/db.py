"""The SQLite database: one file, WAL mode, schema migrations by ``user_version``.

Rows describe files that already exist: writers put files in place first, then record
them, so a crash leaves at worst unreferenced files that ``system check`` removes.
"""

from __future__ import annotations

import fcntl
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dockerbank import faults
from dockerbank.errors import DockerbankError

# Each entry moves the schema one version up. Append, never edit a released entry.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE images (
        id         TEXT PRIMARY KEY,          -- config digest, sha256:...
        created    TEXT NOT NULL,             -- from the image config
        added      TEXT NOT NULL,             -- when this store got it
        size       INTEGER NOT NULL DEFAULT 0,
        top_chain  TEXT                       -- chain ID of the top layer; NULL for an empty rootfs
    );
    CREATE TABLE tags (
        ref        TEXT PRIMARY KEY,          -- docker.io/library/busybox:latest
        repository TEXT NOT NULL,
        tag        TEXT NOT NULL,
        image_id   TEXT NOT NULL REFERENCES images(id)
    );
    CREATE INDEX tags_image ON tags(image_id);
    CREATE TABLE repo_digests (
        repository TEXT NOT NULL,
        digest     TEXT NOT NULL,             -- manifest digest
        image_id   TEXT NOT NULL REFERENCES images(id),
        PRIMARY KEY (repository, digest)
    );
    CREATE TABLE layers (
        chain_id   TEXT PRIMARY KEY,
        diff_id    TEXT NOT NULL,
        parent     TEXT,                      -- chain ID of the layer below
        size       INTEGER NOT NULL,          -- bytes of the unpacked tree
        tar_size   INTEGER NOT NULL           -- bytes of the uncompressed layer tar (diff_id's content)
    );
    CREATE TABLE layer_blobs (                -- compressed forms of a layer known to the store
        diff_id    TEXT NOT NULL,
        blob       TEXT NOT NULL,
        media_type TEXT NOT NULL,
        size       INTEGER NOT NULL,
        PRIMARY KEY (diff_id, blob)
    );
    CREATE TABLE containers (
        id         TEXT PRIMARY KEY,          -- 64 hex
        name       TEXT NOT NULL UNIQUE,
        image_id   TEXT NOT NULL,
        created    TEXT NOT NULL,
        config     TEXT NOT NULL,             -- JSON, fixed at create
        state      TEXT NOT NULL              -- JSON, changes over the container's life
    );
    CREATE INDEX containers_image ON containers(image_id);
    CREATE TABLE volumes (
        name       TEXT PRIMARY KEY,
        driver     TEXT NOT NULL DEFAULT 'local',
        created    TEXT NOT NULL,
        labels     TEXT NOT NULL DEFAULT '{}',
        options    TEXT NOT NULL DEFAULT '{}',
        anonymous  INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE container_volumes (
        container_id TEXT NOT NULL,
        volume_name  TEXT NOT NULL,
        PRIMARY KEY (container_id, volume_name)
    );
    """,
    # 2: networks (one IPv4 subnet on one bridge) and the endpoints netavark set up for containers
    """
    CREATE TABLE networks (
        id         TEXT PRIMARY KEY,          -- 64 hex
        name       TEXT NOT NULL UNIQUE,
        driver     TEXT NOT NULL DEFAULT 'bridge',
        created    TEXT NOT NULL,
        subnet     TEXT NOT NULL,             -- CIDR
        gateway    TEXT NOT NULL,
        internal   INTEGER NOT NULL DEFAULT 0,
        labels     TEXT NOT NULL DEFAULT '{}',
        options    TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE network_endpoints (
        container_id   TEXT NOT NULL,
        network_id     TEXT NOT NULL REFERENCES networks(id),
        container_name TEXT NOT NULL,
        ip             TEXT NOT NULL,
        mac            TEXT NOT NULL DEFAULT '',
        interface_name TEXT NOT NULL,
        aliases        TEXT NOT NULL DEFAULT '[]',
        ports          TEXT NOT NULL DEFAULT '[]',  -- JSON list of published ports (first network only)
        created        TEXT NOT NULL,
        PRIMARY KEY (container_id, network_id),
        UNIQUE (network_id, ip)                     -- never one address for two containers
    );
    """,
    # build layer cache: a step's cache key (build/plan.py cache_key) -> the image it produced
    """
    CREATE TABLE IF NOT EXISTS build_cache (
        key        TEXT PRIMARY KEY,
        image_id   TEXT NOT NULL,
        created    TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS build_cache_image ON build_cache(image_id);
    """,
    # build: the image each step started from, so intermediate images can be told apart
    """
    ALTER TABLE build_cache ADD COLUMN parent TEXT;
    CREATE INDEX IF NOT EXISTS build_cache_parent ON build_cache(parent);
    """,
    # images: the image an image was made from on this host (build step, commit): docker's Parent
    """
    ALTER TABLE images ADD COLUMN parent TEXT;
    CREATE INDEX IF NOT EXISTS images_parent ON images(parent);
    UPDATE images SET parent = (SELECT b.parent FROM build_cache b WHERE b.image_id = images.id
                                AND b.parent IS NOT NULL ORDER BY b.created DESC LIMIT 1);
    """,
    # pods (pod/): the infra container holding the shared namespaces and the pod's fixed config;
    # members name their pod in their container config (ContainerConfig.pod)
    """
    CREATE TABLE IF NOT EXISTS pods (
        id         TEXT PRIMARY KEY,          -- 64 hex
        name       TEXT NOT NULL UNIQUE,
        created    TEXT NOT NULL,
        infra_id   TEXT NOT NULL DEFAULT '',  -- the infra container ('' for a pod without one)
        config     TEXT NOT NULL              -- JSON, fixed at create (pod.model.PodConfig)
    );
    """,
    # network endpoints: the IPv6 address on a network with an IPv6 subnet ('' without one)
    """
    ALTER TABLE network_endpoints ADD COLUMN ip6 TEXT NOT NULL DEFAULT '';
    """,
)


def _statements(script: str) -> list[str]:
    """Split a migration into statements (comments dropped, so they may hold any text)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]


class Database:
    """A connection to ``state.db`` with Dockerbank's pragmas and schema."""

    def __init__(self, path: Path):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA busy_timeout = 30000")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.Error as exc:
            raise DockerbankError(f"cannot open state database {path}: {exc}") from exc

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version >= len(MIGRATIONS):
            return
        # Switching to WAL takes an exclusive lock that SQLite's busy handler does not wait
        # for, so first openers queue on a file lock instead of failing with "locked".
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self.conn.execute("PRAGMA journal_mode = WAL")
            self._apply_migrations()

    def _apply_migrations(self) -> None:
        with self.write():
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            for number in range(version, len(MIGRATIONS)):
                for statement in _statements(MIGRATIONS[number]):
                    self.conn.execute(statement)
            self.conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken at once (BEGIN IMMEDIATE), so concurrent writers queue instead of failing."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc
        try:
            yield self.conn
        except BaseException as exc:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # SQLite rolled back already (a full disk, an I/O error)
            if isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.IntegrityError):
                raise self._failure(exc) from exc
            raise  # IntegrityError: callers turn a taken name into their own message
        else:
            faults.point("db.commit")
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error as exc:
                try:
                    self.conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                raise self._failure(exc) from exc
            faults.point("db.committed")

    def _failure(self, exc: sqlite3.Error) -> DockerbankError:
        """A failed read or write of the state database as one line (nothing was changed)."""
        if "full" in str(exc):
            return DockerbankError(f"No space left on device for the state database {self.path}: free some "
                                   "(dockerbank system df; volume rm, image prune); nothing was changed")
        return DockerbankError(f"state database {self.path}: {exc}")

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc

    def query_one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        try:
            return self.conn.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc

    def close(self) -> None:
        self.conn.close()
