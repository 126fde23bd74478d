"""Which data is protected by a backup, and since when (pure).

From the snapshots of a repository (as its public listing gives them), the verify records and
what exists now: per volume, container and stack the time and size of the last successful
backup and of the last verified one, and per existing volume how long it has gone unprotected.

A snapshot exists only once its manifest is committed, so every listed snapshot is a successful
backup. A volume saved as a database dump (``--consistency dump``) counts as backed up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The label that groups containers into a stack (compose's project, as ``backup --stack`` uses).
STACK_LABEL = "com.docker.compose.project"


@dataclass
class ItemBackup:
    """The newest backup of one item (0 = none) and the newest verified one."""

    last_time: float = 0.0
    last_size: int = 0
    verify_time: float = 0.0
    verify_size: int = 0
    verified_snapshot: float = 0.0   # creation time of the snapshot that verify_* describe


@dataclass
class BackupSummary:
    items: dict[tuple[str, str], ItemBackup] = field(default_factory=dict)   # (kind, name) -> item
    snapshots: int = 0
    last_snapshot_time: float = 0.0
    volume_age: dict[str, float] = field(default_factory=dict)  # existing volume -> seconds unprotected

    @property
    def oldest_unprotected_age(self) -> float:
        """Seconds the least recently protected existing volume has gone without a backup."""
        return max(self.volume_age.values(), default=0.0)


def _covered(part) -> list[tuple[str, str]]:
    """Which (kind, name) items one part of a snapshot saves."""
    if part.kind in ("volume", "container"):
        return [(part.kind, part.name)]
    if part.kind == "dump":
        return [("volume", name) for name in (part.meta or {}).get("volumes", [])]
    return []


def summarize(snapshots: list, verified: dict[str, dict], volumes: list, containers: list,
              now: float) -> BackupSummary:
    """Summarize ``snapshots`` (objects with ``id``, ``created_at()`` and ``parts``) given the
    verify records (snapshot id -> ``{"time", "ok"}``), the existing ``volumes`` (``name``,
    ``created``) and ``containers`` (``name``, ``labels``) at time ``now``."""
    summary = BackupSummary(snapshots=len(snapshots))
    for snap in snapshots:
        when = snap.created_at().timestamp()
        summary.last_snapshot_time = max(summary.last_snapshot_time, when)
        record = verified.get(snap.id) or {}
        checked = float(record.get("time", 0)) if record.get("ok") else 0.0
        for part in snap.parts:
            for key in _covered(part):
                item = summary.items.setdefault(key, ItemBackup())
                if when >= item.last_time:
                    item.last_time, item.last_size = when, part.size
                if checked and when >= item.verified_snapshot:
                    item.verify_time, item.verify_size, item.verified_snapshot = checked, part.size, when
    stacks: dict[str, list[str]] = {}
    for container in containers:
        project = (container.labels or {}).get(STACK_LABEL)
        if project:
            stacks.setdefault(project, []).append(container.name)
    for project, names in sorted(stacks.items()):
        members = [summary.items.get(("container", name), ItemBackup()) for name in names]
        summary.items[("stack", project)] = ItemBackup(
            last_time=min(m.last_time for m in members),
            last_size=sum(m.last_size for m in members),
            verify_time=min(m.verify_time for m in members),
            verify_size=sum(m.verify_size for m in members))
    for volume in volumes:
        newest = summary.items.get(("volume", volume.name))
        since = newest.last_time if newest and newest.last_time else volume.created
        summary.volume_age[volume.name] = max(0.0, now - since)
    return summary

