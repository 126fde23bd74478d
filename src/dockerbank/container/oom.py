"""Out-of-memory kills of a cgroup, for ``OOMKilled`` in ``inspect`` and exit code 137.

Read the counters BEFORE the runtime deletes the cgroup (``crun/runc delete`` removes it).
"""

from __future__ import annotations

from dataclasses import dataclass

from dockerbank.errors import NotFound
from dockerbank.host.cgroups import Cgroup, parse_flat_keyed


@dataclass(frozen=True)
class OomInfo:
    """OOM counters of one cgroup.

    ``oom_kills``: processes the kernel's OOM killer killed in this cgroup (v1
    ``memory.oom_control`` ``oom_kill``, v2 ``memory.events`` ``oom_kill``).
    ``ooms``: times the limit was hit and reclaim failed (v2 ``oom``; v1 ``under_oom``
    is only the current state, so it is 0/1 there). ``failcnt``: v1 ``memory.failcnt``
    (hits of the limit, reclaimed or not; 0 on v2).
    """

    oom_kills: int
    ooms: int
    failcnt: int

    @property
    def killed(self) -> bool:
        """Whether the OOM killer killed at least one process of the cgroup."""
        return self.oom_kills > 0


def parse_oom_v1(oom_control: str, failcnt: str = "0") -> OomInfo:
    """Pure: build :class:`OomInfo` from v1 ``memory.oom_control`` and ``memory.failcnt``."""
    values = parse_flat_keyed(oom_control)
    return OomInfo(values.get("oom_kill", 0), values.get("under_oom", 0), int(failcnt.strip() or 0))


def parse_oom_v2(memory_events: str) -> OomInfo:
    """Pure: build :class:`OomInfo` from v2 ``memory.events``."""
    values = parse_flat_keyed(memory_events)
    return OomInfo(values.get("oom_kill", 0), values.get("oom", 0), 0)


def oom_info(cgroup: Cgroup) -> OomInfo:
    """Read the OOM counters of ``cgroup``; ``NotFound`` if it (or the memory
    controller) does not exist."""
    if cgroup.layout.mode == "v2":
        return parse_oom_v2(cgroup.read("memory", "memory.events"))
    try:
        failcnt = cgroup.read("memory", "memory.failcnt")
    except NotFound:
        failcnt = "0"
    return parse_oom_v1(cgroup.read("memory", "memory.oom_control"), failcnt)


def oom_killed(cgroup: Cgroup) -> bool:
    """Whether the OOM killer has killed a process in ``cgroup`` (``False`` when the
    cgroup is already gone: nothing can be known any more)."""
    try:
        return oom_info(cgroup).killed
    except NotFound:
        return False
