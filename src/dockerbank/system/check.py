"""``system check``: find and repair what a crash or a killed CLI left behind.

Each service knows its own leftovers and repairs them (containers first, since their state
decides what is live); this module asks each in turn and adds the engine's container cgroups
(root's below ``/dockerbank``, a rootless engine's below its user's delegated cgroup v2 subtree:
one code path, :func:`stale_cgroups`).
"""

from __future__ import annotations

from dockerbank.container import model
from dockerbank.errors import DockerbankError

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from dockerbank.host.cgroups import CgroupLayout


def check(engine, repair: bool = True) -> list[str]:
    """Return one line per problem found (and repaired, when ``repair``)."""
    from dockerbank.host.permissions import findings as open_paths

    lines = _section("permissions", lambda: open_paths(engine.config, repair))
    lines += _section("container", lambda: engine.containers.check(repair=repair))
    containers = engine.containers.store.list()
    live = {c.id for c in containers if c.state.status in model.ACTIVE}
    known = {c.id for c in containers}
    lines += _section("cgroup", lambda: _engine_cgroups(live, known, repair))
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


def _engine_cgroups(live: set[str], known: set[str], repair: bool) -> list[str]:
    """This engine's leftover container cgroups: below ``/dockerbank`` in every hierarchy for
    root's engine (v1, hybrid or v2), below the user's delegated cgroup v2 subtree for a rootless
    one (host/cgdelegation.py); nothing for a rootless engine without delegation, whose containers
    get no cgroup (it would otherwise judge root's cgroups, which are not its own)."""
    from dockerbank.host import cgroups

    parent = cgroups.container_parent()
    if parent is None:
        return []
    return stale_cgroups(cgroups.detect_layout(), parent, live, known, repair)


def stale_cgroups(layout: CgroupLayout, parent: str, live: set[str], known: set[str], repair: bool,
                  grace: float = 600.0, drain_timeout: float = 2.0) -> list[str]:
    """Empty container cgroups below ``parent`` in ``layout`` (the host boundary: unit tests hand
    a layout over a fake tree). The cgroup parent is shared (other roots' containers start and end
    in it at any time, as do a user's other roots' in a delegated subtree), so an empty cgroup is
    this root's to judge when one of its containers is named so, or when nobody has used it for
    ``grace`` seconds (a container removed by a crash: the repair removes it, the dry run does not
    count it as this root's problem); busy cgroups are reported only when they belong to this root.
    The processes of one of this root's containers that is not live get ``drain_timeout`` seconds
    to exit before its cgroup is judged busy."""
    from dockerbank.host import cgroups

    keep = {name for name in cgroups.list_children(layout, parent)
            if name in live or (name not in known and cgroups.age(layout, f"{parent}/{name}") < grace)}
    if not repair:
        # another root's container may be ending right now (its cgroup empty for a moment, however
        # old): only this root's are reported; the repair removes old foreign ones quietly
        return [f"found empty {parent}/{name}" for name in cgroups.list_children(layout, parent)
                if name not in keep and name in known and not cgroups.Cgroup(layout, f"{parent}/{name}").pids()]
    report = cgroups.remove_stale(layout, keep, parent=parent, timeout=drain_timeout, drain=known - live)
    lines = [f"removed empty {parent}/{name}" for name in report.removed]
    lines += [f"{parent}/{name} of a stopped container still holds processes {pids}"
              for name, pids in report.busy.items() if name in known]
    lines += [why for name, why in report.failed.items() if name in known]
    return lines
