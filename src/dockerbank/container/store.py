"""Rows of the ``containers`` table: config JSON fixed at create, state JSON changed in a
write transaction (BEGIN IMMEDIATE), lookup by full ID, name or unique ID prefix."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence

from dockerbank.container.model import Container, ContainerConfig, ContainerState
from dockerbank.container.names import is_hex_prefix
from dockerbank.errors import AmbiguousReference, Conflict, NotFound
from dockerbank.state.db import Database


def _text(value: ContainerConfig | ContainerState) -> str:
    """A config or state as stored: its fields' values as JSON. ``dataclasses.asdict`` would
    deep-copy every value first (json.dumps copies nothing; ~8 state writes per start)."""
    return json.dumps(vars(value), default=_nested)


def _nested(value):
    """A dataclass inside a field is stored as asdict would store it."""
    from dataclasses import asdict, is_dataclass

    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _row_to_container(row: sqlite3.Row) -> Container:
    return Container(row["id"], row["name"], row["created"], ContainerConfig.from_dict(json.loads(row["config"])),
                     ContainerState.from_dict(json.loads(row["state"])))


# Parsed configs of listed rows by container ID, with the text they were parsed from. A config is
# fixed at create (update_config changes it only while the container does not run, and a changed
# text is parsed anew), so a long-lived process (the API service: ``GET /containers/json`` every
# few seconds from dashboards and pipelines) parses each container's config once instead of at
# every list; a CLI call lists once and gains nothing, loses nothing.
_LISTED: dict[str, tuple[str, ContainerConfig]] = {}
_LISTED_MAX = 4096


def _listed(row: sqlite3.Row) -> Container:
    """A listed row as a Container; its config from :data:`_LISTED` when the text is the same
    (a shallow copy: callers may set attributes of theirs; none changes nested values in place)."""
    cid, text = row["id"], row["config"]
    cached = _LISTED.get(cid)
    if cached is None or cached[0] != text:
        if len(_LISTED) >= _LISTED_MAX:
            _LISTED.clear()
        cached = _LISTED[cid] = (text, ContainerConfig.from_dict(json.loads(text)))
    config = object.__new__(ContainerConfig)   # the caller's own shallow copy, without __init__
    config.__dict__.update(cached[1].__dict__)
    return Container(cid, row["name"], row["created"], config, ContainerState.from_dict(json.loads(row["state"])))


def name_conflict(name: str, owner: str) -> Conflict:
    return Conflict(f'Conflict. The container name "/{name}" is already in use by container "{owner}". '
                    "You have to remove (or rename) that container to be able to reuse that name.", exit_code=125)


class ContainerStore:
    """The containers table; every write is one transaction."""

    def __init__(self, db: Database):
        self.db = db

    def insert(self, container: Container, rename: Callable[[], str] | None = None) -> None:
        """Record a new container; a taken name fails with Docker's conflict message.

        ``rename``: the name was drawn, not given; when a concurrent create took it between the
        draw and this insert, draw again (as dockerd's name reservation does) instead of failing.
        """
        for attempt in range(5):
            try:
                with self.db.write() as conn:
                    conn.execute(
                        "INSERT INTO containers (id, name, image_id, created, config, state) VALUES (?,?,?,?,?,?)",
                        (container.id, container.name, container.config.image_id, container.created,
                         _text(container.config), _text(container.state)),
                    )
                return
            except sqlite3.IntegrityError as exc:
                row = self.db.query_one("SELECT id FROM containers WHERE name = ?", (container.name,))
                if row is None:
                    raise
                if rename is None or attempt == 4:
                    raise name_conflict(container.name, row["id"]) from exc
                container.name = rename()

    def name_taken(self, name: str) -> bool:
        return self.db.query_one("SELECT 1 FROM containers WHERE name = ?", (name,)) is not None

    def get(self, cid: str) -> Container:
        row = self.db.query_one("SELECT * FROM containers WHERE id = ?", (cid,))
        if row is None:
            raise NotFound(f"No such container: {cid}")
        return _row_to_container(row)

    def find(self, ref: str) -> Container:
        """By full ID, exact name (with or without a leading slash), or unique ID prefix."""
        name = ref.removeprefix("/")
        row = self.db.query_one("SELECT * FROM containers WHERE id = ? OR name = ? ORDER BY id = ? DESC",
                                (ref, name, ref))
        if row is not None:
            return _row_to_container(row)
        if is_hex_prefix(ref):
            rows = self.db.query("SELECT * FROM containers WHERE id LIKE ? LIMIT 2", (ref + "%",))
            if len(rows) > 1:
                raise AmbiguousReference(f"multiple IDs found with provided prefix: {ref}")
            if rows:
                return _row_to_container(rows[0])
        raise NotFound(f"No such container: {ref}")

    def list(self, statuses: Sequence[str] | None = None) -> list[Container]:
        """All containers, newest first (one query); only those recorded in one of ``statuses``
        when given (``ps`` without ``-a`` parses no exited container's rows)."""
        if statuses is None:
            rows = self.db.query("SELECT * FROM containers ORDER BY created DESC, rowid DESC")
        else:
            marks = ", ".join("?" * len(statuses))
            rows = self.db.query(f"SELECT * FROM containers WHERE json_extract(state, '$.status') IN ({marks}) "
                                 "ORDER BY created DESC, rowid DESC", tuple(statuses))
        return [_listed(r) for r in rows]

    def update_state(self, cid: str, change: Callable[[ContainerState], ContainerState | None]) -> ContainerState:
        """Read, change and write the state in one write transaction; ``change`` may mutate in place."""
        return self._update(cid, "state", ContainerState, change)

    def update_config(self, cid: str, change: Callable[[ContainerConfig], ContainerConfig | None]) -> ContainerConfig:
        """The same for the config: only what may change while a container does not run (its networks)."""
        return self._update(cid, "config", ContainerConfig, change)

    def _update(self, cid: str, column: str, kind, change):
        with self.db.write() as conn:
            row = conn.execute(f"SELECT {column} FROM containers WHERE id = ?", (cid,)).fetchone()
            if row is None:
                raise NotFound(f"No such container: {cid}")
            value = kind.from_dict(json.loads(row[column]))
            result = change(value)
            if result is not None:
                value = result
            conn.execute(f"UPDATE containers SET {column} = ? WHERE id = ?", (_text(value), cid))
        return value

    def rename(self, cid: str, new_name: str) -> None:
        try:
            with self.db.write() as conn:
                conn.execute("UPDATE containers SET name = ? WHERE id = ?", (new_name, cid))
        except sqlite3.IntegrityError as exc:
            row = self.db.query_one("SELECT id FROM containers WHERE name = ?", (new_name,))
            raise name_conflict(new_name, row["id"] if row else "?") from exc

    def delete(self, cid: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM containers WHERE id = ?", (cid,))
