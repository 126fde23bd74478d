"""Rows of the ``pods`` table: the pod's config JSON fixed at create, lookup by full ID, name or
unique ID prefix; its members are the containers whose config names the pod."""

from __future__ import annotations

import builtins
import json
import sqlite3

from dockerbank.container.names import is_hex_prefix
from dockerbank.errors import AmbiguousReference, Conflict
from dockerbank.pod.model import Pod, PodConfig, not_found
from dockerbank.state.db import Database


def _row_to_pod(row: sqlite3.Row) -> Pod:
    return Pod(row["id"], row["name"], row["created"], row["infra_id"], PodConfig.from_dict(json.loads(row["config"])))


def name_conflict(name: str) -> Conflict:
    """podman's message for a pod name in use."""
    return Conflict(f'adding pod to state: name "{name}" is in use: pod already exists', exit_code=125)


class PodStore:
    """The pods table; every write is one transaction."""

    def __init__(self, db: Database):
        self.db = db

    def insert(self, pod: Pod) -> None:
        """Record a new pod; a taken name fails with podman's conflict message."""
        try:
            with self.db.write() as conn:
                conn.execute("INSERT INTO pods (id, name, created, infra_id, config) VALUES (?,?,?,?,?)",
                             (pod.id, pod.name, pod.created, pod.infra_id, json.dumps(pod.config.to_dict())))
        except sqlite3.IntegrityError as exc:
            raise name_conflict(pod.name) from exc

    def name_taken(self, name: str) -> bool:
        return self.db.query_one("SELECT 1 FROM pods WHERE name = ?", (name,)) is not None

    def find(self, ref: str) -> Pod:
        """By full ID, exact name, or unique ID prefix; podman's message when none matches."""
        row = self.db.query_one("SELECT * FROM pods WHERE id = ? OR name = ? ORDER BY id = ? DESC", (ref, ref, ref))
        if row is not None:
            return _row_to_pod(row)
        if is_hex_prefix(ref):
            rows = self.db.query("SELECT * FROM pods WHERE id LIKE ? LIMIT 2", (ref + "%",))
            if len(rows) > 1:
                raise AmbiguousReference(f"more than one result for pod ID {ref}", exit_code=125)
            if rows:
                return _row_to_pod(rows[0])
        raise not_found(ref)

    def list(self) -> list[Pod]:
        """All pods, newest first."""
        return [_row_to_pod(r) for r in self.db.query("SELECT * FROM pods ORDER BY created DESC, rowid DESC")]

    def member_ids(self, pod_id: str) -> builtins.list[str]:
        """The IDs of the pod's containers (the infra container included), oldest first."""
        rows = self.db.query("SELECT id FROM containers WHERE json_extract(config, '$.pod') = ? "
                             "ORDER BY created, rowid", (pod_id,))
        return [r["id"] for r in rows]

    def names(self) -> dict[str, str]:
        """Pod ID -> name, for every pod (``ps --pod``)."""
        return {r["id"]: r["name"] for r in self.db.query("SELECT id, name FROM pods")}

    def delete(self, pod_id: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM pods WHERE id = ?", (pod_id,))
