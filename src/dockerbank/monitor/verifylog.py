"""Which backup snapshot passed ``backup verify`` when (``<root>/backup-verify.json``), and the last
successful ``backup copy`` to each repository (``<root>/backup-copy.json``).

Kept in Dockerbank's root rather than in the repository, so that it works the same for any
repository (read-only, encrypted or remote) and a copied repository does not claim verifies
that another host did. Shape: ``{"<repository>": {"<snapshot id>": {"time": UNIX, "ok": bool}}}``.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

FILENAME = "backup-verify.json"
#: Records kept per repository (the newest ones; older snapshots are usually pruned anyway).
MAX_RECORDS = 1000


def _key(repository: str | Path) -> str:
    text = str(repository)
    return text if "://" in text else str(Path(text).resolve())


def load(root: Path, repository: str | Path) -> dict[str, dict]:
    """The verify records of ``repository`` (snapshot id -> record); ``{}`` when none or unreadable."""
    try:
        data = json.loads((Path(root) / FILENAME).read_text())
    except (OSError, ValueError):
        return {}
    records = data.get(_key(repository)) if isinstance(data, dict) else None
    return records if isinstance(records, dict) else {}


def record(root: Path, repository: str | Path, snapshot_id: str, ok: bool, when: float | None = None) -> None:
    """Remember that ``snapshot_id`` of ``repository`` was verified (``ok``: without problems)."""

    def add(data: dict) -> None:
        records = data.setdefault(_key(repository), {})
        records[snapshot_id] = {"time": time.time() if when is None else when, "ok": bool(ok)}
        if len(records) > MAX_RECORDS:
            newest = sorted(records.items(), key=lambda kv: kv[1].get("time", 0))[-MAX_RECORDS:]
            data[_key(repository)] = dict(newest)

    _update(Path(root) / FILENAME, add)


def verify(root: Path, repository, snapshot, tick=None) -> tuple[list[str], str | None]:
    """Verify ``snapshot`` of ``repository`` (a backup.repository.Repository) and remember the
    outcome: (problems, why the outcome could not be recorded or None). Every transport verifies
    through this, so the metrics see each verify."""
    problems = repository.verify(snapshot, tick)
    try:
        record(root, repository.url, snapshot.id, not problems)
    except OSError as exc:
        return problems, f"cannot record the verify of {snapshot.id}: {exc}"
    return problems, None


COPY_FILENAME = "backup-copy.json"


def record_copy(root: Path, target: str | Path, source: str | Path, snapshots: int,
                when: float | None = None) -> None:
    """Remember a successful ``backup copy`` to ``target`` (the off-site copy the metrics report)."""

    def add(data: dict) -> None:
        data[_key(target)] = {"time": time.time() if when is None else when, "from": _key(source),
                              "snapshots": int(snapshots)}

    _update(Path(root) / COPY_FILENAME, add)


def copies(root: Path) -> dict[str, dict]:
    """Target repository -> its last successful copy ({"time", "from", "snapshots"}); ``{}`` when none."""
    try:
        data = json.loads((Path(root) / COPY_FILENAME).read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def _update(path: Path, change) -> None:
    """Change the JSON object in ``path`` under a lock, written by rename (0600)."""
    lock_fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)   # concurrent writers must not drop each other's records
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                data = {}
        except (OSError, ValueError):
            data = {}
        change(data)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out)
        os.replace(tmp, path)
    finally:
        os.close(lock_fd)
