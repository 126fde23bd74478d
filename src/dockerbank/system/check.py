"""``system check``: find and repair what a crash or a killed CLI left behind.

Each service knows its own leftovers; this module asks each in turn, from the top
(containers, whose state decides what is live) down to cgroups, mounts and namespaces.
Destructive repairs only touch what no live container of this root uses, and leftovers
that a concurrent ``create`` may be writing right now are left alone for a grace period.
"""

from __future__ import annotations

import os
import shutil
import time

from dockerbank.container import model
from dockerbank.errors import DockerbankError

GRACE_SECONDS = 600


def check(engine, repair: bool = True, grace: float = GRACE_SECONDS) -> list[str]:
    """Return one line per problem found (and repaired, when ``repair``)."""
    verb = "removed" if repair else "found"
    lines: list[str] = []
    live = _reconcile_containers(engine, lines)
    known = {c.id for c in engine.containers.store.list()}
    lines += _stale_mounts(engine, live, verb, repair)
    lines += _orphan_dirs(engine, known, verb, repair, grace)
    lines += _stale_runtime_state(engine, live, verb, repair)
    lines += _stale_cgroups(live, known, verb, repair)
    lines += _section("volume", lambda: engine.volumes.check(repair=repair))
    if repair:
        lines += _section("network", lambda: engine.networks.cleanup(live))
    return lines


def _section(name: str, run) -> list[str]:
    """One service's findings; its failure is reported as a finding, not an end to the check."""
    try:
        return [f"{name}: {line}" for line in run()]
    except DockerbankError as exc:
        return [f"{name}: check failed: {exc}"]


def _reconcile_containers(engine, lines: list[str]) -> set[str]:
    """Mark containers whose monitor died as exited; return the IDs still running or paused."""
    live: set[str] = set()
    for before in engine.containers.store.list():
        after = engine.containers.reconcile(before)
        if before.state.status in model.ACTIVE and after.state.status not in model.ACTIVE:
            lines.append(f"container {before.id[:12]}: process gone, marked {after.state.status}"
                         f" (exit code {after.state.exit_code})")
        if after.state.status in model.ACTIVE:
            live.add(before.id)
    return live


def _still_live(engine, cid: str) -> bool:
    """Re-read a container under its lifecycle lock: a concurrent start may have made it live."""
    from dockerbank.errors import NotFound

    try:
        with engine.containers.lock(cid):
            return engine.containers.store.get(cid).state.status in model.ACTIVE
    except NotFound:
        return False


def _stale_mounts(engine, live: set[str], verb: str, repair: bool) -> list[str]:
    from dockerbank.host import mounts

    lines = []
    containers_dir = engine.config.containers_dir
    for mount in mounts.overlay_mounts_under(containers_dir):
        cid = os.path.relpath(mount.mount_point, containers_dir).split(os.sep)[0]
        if cid in live or _still_live(engine, cid):
            continue
        if repair:
            mounts.unmount(mount.mount_point)
        lines.append(f"mount: {verb} stale overlay {mount.mount_point}")
    return lines


def _orphan_dirs(engine, known: set[str], verb: str, repair: bool, grace: float) -> list[str]:
    """Container directories without a row (a crash between mkdir and insert, or during rm)."""
    lines = []
    directory = engine.config.containers_dir
    if not directory.is_dir():
        return lines
    now = time.time()
    for entry in directory.iterdir():
        if entry.name in known or entry.name.startswith("."):
            continue
        try:
            if now - entry.stat().st_mtime < grace:
                continue  # maybe a create in progress
        except FileNotFoundError:
            continue
        if repair:
            shutil.rmtree(entry, ignore_errors=True)
        lines.append(f"container directory: {verb} {entry} (no container record)")
    return lines


def _stale_runtime_state(engine, live: set[str], verb: str, repair: bool) -> list[str]:
    """Runtime state dirs (crun/runc ``--root``) of containers that are not live."""
    lines = []
    state_root = engine.containers.runtime.state_root
    if not state_root.is_dir():
        return lines
    for entry in state_root.iterdir():
        if not entry.is_dir() or entry.name in live or _still_live(engine, entry.name):
            continue
        if repair:
            try:
                engine.containers.runtime.delete(entry.name, force=True)
            except DockerbankError:
                shutil.rmtree(entry, ignore_errors=True)
        lines.append(f"runtime: {verb} state of container {entry.name[:12]}")
    return lines


def _stale_cgroups(live: set[str], known: set[str], verb: str, repair: bool) -> list[str]:
    """Empty container cgroups. The cgroup parent is host-wide, so busy cgroups are reported only
    when they belong to this root (another root's running containers are not ours to judge)."""
    from dockerbank.host import cgroups

    layout = cgroups.detect_layout()
    if not repair:
        stale = [name for name in cgroups.list_children(layout, cgroups.CGROUP_PARENT)
                 if name not in live and not cgroups.Cgroup(layout, f"{cgroups.CGROUP_PARENT}/{name}").pids()]
        return [f"cgroup: {verb} {cgroups.CGROUP_PARENT}/{name}" for name in stale]
    report = cgroups.remove_stale(layout, live)
    lines = [f"cgroup: {verb} {cgroups.CGROUP_PARENT}/{name}" for name in report.removed]
    lines += [f"cgroup: {cgroups.CGROUP_PARENT}/{name} of a stopped container still holds processes {pids}"
              for name, pids in report.busy.items() if name in known]
    return lines
