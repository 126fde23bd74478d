"""``system check``: find and repair what a crash or a killed CLI left behind.

Each service knows its own leftovers and repairs them (containers first, since their state
decides what is live); this module asks each in turn and adds the host-wide cgroups.
"""

from __future__ import annotations

from dockerbank.container import model
from dockerbank.errors import DockerbankError


def check(engine, repair: bool = True) -> list[str]:
    """Return one line per problem found (and repaired, when ``repair``)."""
    from dockerbank.host.permissions import findings as open_paths

    lines = _section("permissions", lambda: open_paths(engine.config, repair))
    lines += _section("container", lambda: engine.containers.check(repair=repair))
    containers = engine.containers.store.list()
    live = {c.id for c in containers if c.state.status in model.ACTIVE}
    known = {c.id for c in containers}
    lines += _section("cgroup", lambda: _stale_cgroups(live, known, repair))
    lines += _section("volume", lambda: engine.volumes.check(repair=repair))
    lines += _section("pod", lambda: engine.pods.check(repair=repair))
    if repair:
        lines += _section("network", lambda: engine.networks.cleanup(live))
    return lines


def _section(name: str, run) -> list[str]:
    """One service's findings; its failure is reported as a finding, not an end to the check."""
    try:
        return [f"{name}: {line}" for line in run()]
    except DockerbankError as exc:
        return [f"{name}: check failed: {exc}"]


def _stale_cgroups(live: set[str], known: set[str], repair: bool, grace: float = 600.0) -> list[str]:
    """Empty container cgroups. The cgroup parent is host-wide and other roots' containers start
    and end in it at any time, so an empty cgroup is this root's to judge when one of its
    containers is named so, or when nobody has used it for ``grace`` seconds (a container removed
    by a crash: the repair removes it, the dry run does not count it as this root's problem);
    busy cgroups are reported only when they belong to this root."""
    from dockerbank.host import cgroups

    layout = cgroups.detect_layout()
    parent = cgroups.CGROUP_PARENT
    keep = {name for name in cgroups.list_children(layout, parent)
            if name in live or (name not in known and cgroups.age(layout, f"{parent}/{name}") < grace)}
    if not repair:
        # another root's container may be ending right now (its cgroup empty for a moment, however
        # old): only this root's are reported; the repair removes old foreign ones quietly
        return [f"found empty {parent}/{name}" for name in cgroups.list_children(layout, parent)
                if name not in keep and name in known and not cgroups.Cgroup(layout, f"{parent}/{name}").pids()]
    report = cgroups.remove_stale(layout, keep, drain=known - live)
    lines = [f"removed empty {parent}/{name}" for name in report.removed]
    lines += [f"{parent}/{name} of a stopped container still holds processes {pids}"
              for name, pids in report.busy.items() if name in known]
    lines += [why for name, why in report.failed.items() if name in known]
    return lines
