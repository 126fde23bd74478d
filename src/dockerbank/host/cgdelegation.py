"""Which cgroup controllers the host delegates to an ordinary user (rootless resource limits).

On a cgroup v2 host systemd gives every logged-in user ``user@UID.service`` (``Delegate=`` in
``user@.service``: ``memory pids`` by default, newer systemd adds ``cpu``): the cgroup directory
and its ``cgroup.procs``/``cgroup.subtree_control`` belong to the user, and the controllers its
parent enabled for it are listed in its ``cgroup.controllers``. A rootless engine whose process
runs below such a cgroup can give its containers cgroups of their own there (crun rootless with
the cgroupfs manager makes ``<delegated>/dockerbank/<id>`` and enables the controllers on the way,
as Podman's containers get theirs). cgroup v1 and hybrid hosts delegate nothing.

:func:`detect` is pure: it asks a reader object (:class:`CgroupReader` reads the real host; unit
tests hand it a fake tree in a temporary directory) and answers a :class:`Delegation`.
:func:`refusal` decides which limit flags a rootless container may use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

#: the v2 controllers Docker's limits need, in the order named to the user
CONTROLLERS = ("cpu", "cpuset", "io", "memory", "pids")

#: what root does to delegate them all (one line, appended to refusals)
DELEGATE_HINT = ("root can delegate them: systemctl edit user@.service, add [Service] "
                 "Delegate=cpu cpuset io memory pids, then log in again")

#: container option -> (its flag, the v2 controller it needs)
LIMIT_FLAGS = {
    "memory": ("--memory", "memory"), "memory_swap": ("--memory-swap", "memory"),
    "memory_reservation": ("--memory-reservation", "memory"),
    "nano_cpus": ("--cpus", "cpu"), "cpu_shares": ("--cpu-shares", "cpu"),
    "cpu_period": ("--cpu-period", "cpu"), "cpu_quota": ("--cpu-quota", "cpu"),
    "pids_limit": ("--pids-limit", "pids"), "blkio_weight": ("--blkio-weight", "io"),
    "cpuset_cpus": ("--cpuset-cpus", "cpuset"), "cpuset_mems": ("--cpuset-mems", "cpuset"),
}

V1 = "v1"            # cgroup v1 or hybrid: no cgroup2 tree at /sys/fs/cgroup
NOT_OWNED = "not-owned"    # this process's cgroup is not the user's
INTERNAL = "internal"      # the user's topmost cgroup holds this process: it cannot pass controllers on
NONE = "none"        # the user's cgroup has none of the controllers


@dataclass(frozen=True)
class Delegation:
    """What a rootless engine may use: ``controllers`` delegated (a subset of
    :data:`CONTROLLERS`) below ``base`` (the user's topmost cgroup, a path such as
    ``/user.slice/user-1000.slice/user@1000.service``); when nothing is, ``why`` (one of
    ``V1``/``NOT_OWNED``/``INTERNAL``/``NONE``) and ``reason`` (one line saying why)."""

    controllers: frozenset[str] = frozenset()
    base: str = ""
    why: str = ""
    reason: str = ""

    @property
    def missing(self) -> list[str]:
        """The controllers of :data:`CONTROLLERS` not delegated, in order."""
        return [c for c in CONTROLLERS if c not in self.controllers]

    def parent(self, name: str = "/dockerbank") -> str | None:
        """The cgroup below which the engine's containers get theirs (None: no delegation)."""
        return f"{self.base}/{name.strip('/')}" if self.controllers else None

    def statement(self) -> str:
        """One line for ``system info`` and ``audit host``: what a rootless engine can limit."""
        if not self.controllers:
            return (f"rootless Dockerbank cannot limit resources: {self.reason}; "
                    "run as root for --memory/--cpus/--pids-limit/--blkio-weight")
        used = ", ".join(c for c in CONTROLLERS if c in self.controllers)
        text = f"cgroup v2 controllers {used} are delegated to this user (containers below {self.parent()})"
        if self.missing:
            flags = "/".join(f for f, c in LIMIT_FLAGS.values() if c in self.missing)
            text += f"; not delegated: {', '.join(self.missing)} ({flags} refused); {DELEGATE_HINT}"
        return text


class CgroupReader:
    """The host's side of detection: the cgroup2 tree at ``root``, this process's cgroup
    (``proc_cgroup``) and who owns what (``uid``: this process's; inside the user's namespace
    the user's own files show as owned by 0, which is then also this process's uid)."""

    def __init__(self, root: Path | str = "/sys/fs/cgroup", proc_cgroup: Path | str = "/proc/self/cgroup",
                 uid: int | None = None):
        self.root = Path(root)
        self.proc_cgroup = Path(proc_cgroup)
        self.uid = os.geteuid() if uid is None else uid

    def unified(self) -> bool:
        """Whether ``root`` is a cgroup2 tree (its root has ``cgroup.controllers``)."""
        return (self.root / "cgroup.controllers").is_file()

    def own_cgroup(self) -> str | None:
        """This process's cgroup2 path (the ``0::`` line), None when there is none."""
        try:
            text = self.proc_cgroup.read_text()
        except OSError:
            return None
        return next((line[3:].strip() for line in text.splitlines() if line.startswith("0::")), None)

    def owned(self, cgroup: str) -> bool:
        """Whether the user owns ``cgroup``'s directory and the two files delegation hands over
        (``cgroup.procs``: moving processes in; ``cgroup.subtree_control``: enabling controllers)."""
        directory = self.root / cgroup.strip("/")
        try:
            return all(os.stat(p).st_uid == self.uid for p in
                       (directory, directory / "cgroup.procs", directory / "cgroup.subtree_control"))
        except OSError:
            return False

    def controllers(self, cgroup: str) -> frozenset[str]:
        """The controllers ``cgroup`` may use (its ``cgroup.controllers``)."""
        try:
            return frozenset((self.root / cgroup.strip("/") / "cgroup.controllers").read_text().split())
        except OSError:
            return frozenset()


def detect(reader: CgroupReader) -> Delegation:
    """Which controllers the user of this process may use for its containers (see module doc)."""
    own = reader.own_cgroup() if reader.unified() else None
    if own is None:
        return Delegation(why=V1, reason="this host has cgroup v1/hybrid (no cgroup2 tree at /sys/fs/cgroup), "
                                         "which delegates no cgroups to ordinary users (boot with "
                                         "systemd.unified_cgroup_hierarchy=1 for cgroup v2)")
    parts = [p for p in own.split("/") if p]
    base = ""
    for depth in range(len(parts), 0, -1):   # the topmost cgroup of the user's above this process
        candidate = "/" + "/".join(parts[:depth])
        if not reader.owned(candidate):
            break
        base = candidate
    if not base:
        return Delegation(why=NOT_OWNED, reason=f"this process's cgroup {own or '/'} does not belong to the user "
                                                "(an ssh or su session's scope): run the engine inside the user's "
                                                "systemd delegation, e.g. systemd-run --user --scope dockerbank ...")
    if base == own:
        return Delegation(base=base, why=INTERNAL,
                          reason=f"this process runs in {base}, the user's topmost cgroup, which cannot hand "
                                 "controllers to containers while it holds processes: start the engine with "
                                 "systemd-run --user --scope dockerbank ...")
    controllers = reader.controllers(base) & frozenset(CONTROLLERS)
    if not controllers:
        return Delegation(base=base, why=NONE, reason=f"the user's cgroup {base} has no controller delegated "
                                                      f"(cgroup.controllers); {DELEGATE_HINT}")
    return Delegation(controllers, base)


def requested(opts: object) -> dict[str, str]:
    """The limit flags ``opts`` (container create options) sets: flag -> controller it needs."""
    out: dict[str, str] = {}
    for attr, (flag, controller) in LIMIT_FLAGS.items():
        value = getattr(opts, attr, None)
        if value and value != -1:   # -1: unlimited (--memory-swap -1, --pids-limit -1)
            out[flag] = controller
    return out


def refusal(delegation: Delegation, opts: object) -> str | None:
    """The one line refusing the limits of ``opts`` a rootless engine cannot apply under
    ``delegation``; None when all of them can be (or none is asked for)."""
    wanted = requested(opts)
    if not wanted:
        return None
    if not delegation.controllers:
        return delegation.statement()
    refused = {flag: c for flag, c in wanted.items() if c not in delegation.controllers}
    if not refused:
        return None
    controllers = sorted(set(refused.values()), key=CONTROLLERS.index)
    return (f"rootless Dockerbank cannot apply {', '.join(refused)}: the host does not delegate the "
            f"{'/'.join(controllers)} controller{'s' if len(controllers) > 1 else ''} to this user (delegated: "
            f"{', '.join(c for c in CONTROLLERS if c in delegation.controllers)}); {DELEGATE_HINT}")


@cache
def current() -> Delegation:
    """This process's delegation (read once: it does not change while a command runs)."""
    return detect(CgroupReader())
