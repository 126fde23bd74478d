"""Control groups: which layout the host has, where a container's cgroup lives, and
the few writes Dockerbank makes itself (freezing, removing stale trees).

Three layouts exist in the wild and all are handled:

* ``v1``     - one mount per controller (``/sys/fs/cgroup/memory``, ...), no cgroup2;
* ``hybrid`` - v1 controllers plus a cgroup2 mount at ``/sys/fs/cgroup/unified`` that
  carries (almost) no controllers (these build machines, older systemd);
* ``v2``     - one cgroup2 tree at ``/sys/fs/cgroup`` (plain Debian 12 with systemd).

Dockerbank uses the cgroupfs manager: the OCI ``linux.cgroupsPath`` of a container is
``/dockerbank/<64-hex-id>``, which the runtime places at
``/sys/fs/cgroup/<controller>/dockerbank/<id>`` on v1 and ``/sys/fs/cgroup/dockerbank/<id>``
on v2 (on hybrid hosts runc also makes ``/sys/fs/cgroup/unified/dockerbank/<id>``).

The layout is parsed from ``/proc/self/mountinfo`` by a pure function
(:func:`parse_layout`) so that unit tests can feed any of the three layouts.
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from dockerbank.errors import NotFound, NotSupported, RuntimeFailure

def _parent_from_env() -> str:
    """``$DOCKERBANK_CGROUP_PARENT`` (dockerd's ``--cgroup-parent``), else ``/dockerbank``. Roots that
    share a host and want to judge their cgroups alone (``system check``) each take their own; every
    process of a root (CLI, conmon's cleanup, the API service) inherits it from the environment."""
    value = os.environ.get("DOCKERBANK_CGROUP_PARENT", "").strip("/")
    parts = [p for p in value.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        return "/dockerbank"
    return "/" + "/".join(parts)


#: Parent of every container cgroup (the OCI ``cgroupsPath`` prefix).
CGROUP_PARENT = _parent_from_env()

#: v1 controllers Dockerbank reads or limits, in the order tried for "which dir holds
#: the pids" (``devices`` first like runc, which always joins it).
V1_CONTROLLERS = ("devices", "pids", "memory", "freezer", "cpu", "cpuacct", "cpuset", "blkio")

#: Controller names on v2 that correspond to v1 names (v1 name -> v2 name).
V1_TO_V2 = {"cpuacct": "cpu", "blkio": "io", "freezer": "freezer", "devices": "devices"}

#: v2 controllers enabled for a new cgroup (what the OCI runtimes need for Docker's limits).
V2_CONTAINER_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "pids")

FREEZER_STATES = ("THAWED", "FREEZING", "FROZEN")


@dataclass(frozen=True)
class CgroupLayout:
    """Where the cgroup filesystems of this host are mounted.

    ``mode`` is ``"v1"``, ``"hybrid"`` or ``"v2"``. ``v1_mounts`` maps every v1
    controller name to its mount point (co-mounted controllers such as ``cpu,cpuacct``
    map to the same directory). ``unified`` is the cgroup2 mount point, if any, and
    ``v2_controllers`` the controllers its root offers (``cgroup.controllers``).
    ``named_mounts`` are controller-less v1 hierarchies (``name=systemd``): runc puts
    a container there too, so removal must clean them.
    """

    mode: str
    v1_mounts: dict[str, Path] = field(default_factory=dict)
    unified: Path | None = None
    v2_controllers: frozenset[str] = frozenset()
    named_mounts: dict[str, Path] = field(default_factory=dict)  # "systemd" -> name=systemd hierarchy

    @property
    def version(self) -> int:
        """Docker's "Cgroup Version": 2 only on a pure v2 host."""
        return 2 if self.mode == "v2" else 1

    @property
    def driver(self) -> str:
        """Docker's "Cgroup Driver" (Dockerbank always manages cgroups by path)."""
        return "cgroupfs"

    def controllers(self) -> frozenset[str]:
        """Controllers usable for containers (v1 names on v1/hybrid, v2 names on v2)."""
        if self.mode == "v2":
            # freezer and devices are not listed in cgroup.controllers but always exist on v2.
            return self.v2_controllers | {"freezer", "devices"}
        return frozenset(self.v1_mounts)

    def has(self, controller: str) -> bool:
        """Whether ``controller`` (a v1 name such as ``memory``/``blkio``/``cpuacct``) exists."""
        if self.mode == "v2":
            return V1_TO_V2.get(controller, controller) in self.controllers()
        return controller in self.v1_mounts

    def dir_for(self, cgroups_path: str, controller: str) -> Path | None:
        """The directory of ``cgroups_path`` (e.g. ``/dockerbank/<id>``) for ``controller``.

        On v2 every controller is the same directory (core files such as ``cpu.stat``
        exist there even when a controller is not enabled). On v1 ``None`` when the
        controller does not exist on this host. The directory itself may not exist.
        """
        rel = cgroups_path.strip("/")
        if self.mode == "v2":
            assert self.unified is not None
            return self.unified / rel
        mount = self.v1_mounts.get(controller)
        return mount / rel if mount is not None else None

    def dirs_for(self, cgroups_path: str) -> list[Path]:
        """Every directory ``cgroups_path`` may occupy on this host (one per hierarchy,
        including the hybrid unified tree), without duplicates; for removal."""
        rel = cgroups_path.strip("/")
        seen: list[Path] = []
        for mount in [*self.v1_mounts.values(), *self.named_mounts.values()]:
            if mount / rel not in seen:
                seen.append(mount / rel)
        if self.unified is not None and self.unified / rel not in seen:
            seen.append(self.unified / rel)
        return seen


def _unescape_mountinfo(text: str) -> str:
    """Mountinfo escapes space, tab, newline and backslash as octal ``\\NNN``."""
    out = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and text[i + 1:i + 4].isdigit():
            out.append(chr(int(text[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def parse_layout(mountinfo: str, read_controllers=None) -> CgroupLayout:
    """Derive the cgroup layout from the text of ``/proc/self/mountinfo`` (pure).

    ``read_controllers(path) -> str`` returns the text of ``<path>/cgroup.controllers``
    for a cgroup2 mount (the real reader is used by :func:`detect_layout`); when it is
    ``None`` the v2 controller set is left empty. Raises ``NotSupported`` when no cgroup
    filesystem is mounted at all.
    """
    v1: dict[str, Path] = {}
    named: dict[str, Path] = {}
    unified: Path | None = None
    for line in mountinfo.splitlines():
        parts = line.split()
        if "-" not in parts:
            continue
        sep = parts.index("-")
        if len(parts) < sep + 4 or len(parts) < 6:
            continue
        fstype = parts[sep + 1]
        mount_point = Path(_unescape_mountinfo(parts[4]))
        super_opts = parts[sep + 3].split(",")
        if fstype == "cgroup":
            for opt in super_opts:
                if opt.startswith("name="):
                    named.setdefault(opt[5:], mount_point)
                    continue
                if opt in ("rw", "ro") or "=" in opt:
                    continue
                if opt in ("clone_children", "noprefix", "xattr", "cpuset_v2_mode"):
                    continue
                v1.setdefault(opt, mount_point)
        elif fstype == "cgroup2" and (
                unified is None or str(mount_point) in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")):
            # Prefer the canonical mount points if several exist.
            unified = mount_point
    if not v1 and not named and unified is None:
        raise NotSupported("no cgroup filesystem is mounted (looked in /proc/self/mountinfo)")
    v2_controllers: frozenset[str] = frozenset()
    if unified is not None and read_controllers is not None:
        try:
            v2_controllers = frozenset(read_controllers(unified).split())
        except OSError:
            v2_controllers = frozenset()
    if not v1 and unified is not None:
        return CgroupLayout("v2", {}, unified, v2_controllers, named)
    return CgroupLayout("hybrid" if unified is not None else "v1", v1, unified, v2_controllers, named)


def detect_layout(mountinfo_path: str | Path = "/proc/self/mountinfo") -> CgroupLayout:
    """Read this host's cgroup layout (cheap: one small file read; callers may cache)."""
    text = Path(mountinfo_path).read_text()
    return parse_layout(text, lambda p: (Path(p) / "cgroup.controllers").read_text())


@cache
def container_parent() -> str | None:
    """The cgroup below which this engine's containers get theirs: :data:`CGROUP_PARENT` for
    root's engine, ``<the user's delegated cgroup>/dockerbank`` for a rootless one the host
    delegates controllers to (host/cgdelegation.py), None for a rootless one it delegates none to
    (its containers get no cgroup). The one answer for the spec, the readers and ``system check``;
    read once (it does not change while a command runs)."""
    from dockerbank.host.rootless import rootless

    if not rootless():
        return CGROUP_PARENT
    from dockerbank.host.cgdelegation import current

    return current().parent(CGROUP_PARENT)


def container_cgroups_path(container_id: str) -> str:
    """Where a container's cgroup is: ``/dockerbank/<id>`` for root's engine, below the user's
    delegated cgroup for a rootless one (the path of a cgroup that does not exist when the host
    delegates nothing: readers then find no cgroup)."""
    return f"{container_parent() or CGROUP_PARENT}/{container_id}"


def spec_cgroups_path(container_id: str) -> str | None:
    """The OCI ``linux.cgroupsPath`` of a container: :func:`container_cgroups_path`, None for a
    rootless engine the host delegates no controller to (crun then makes no cgroup)."""
    parent = container_parent()
    return None if parent is None else f"{parent}/{container_id}"


@dataclass(frozen=True)
class Cgroup:
    """One cgroup (the same relative path in every hierarchy of ``layout``)."""

    layout: CgroupLayout
    path: str  # e.g. "/dockerbank/<id>"

    def dir(self, controller: str) -> Path | None:
        """Directory for ``controller`` (v1 name), ``None`` when the host lacks it."""
        return self.layout.dir_for(self.path, controller)

    def exists(self) -> bool:
        """Whether the cgroup exists in any hierarchy."""
        return any(d.is_dir() for d in self.layout.dirs_for(self.path))

    def read(self, controller: str, filename: str) -> str:
        """Text of one control file; ``NotFound`` if the controller or file is missing."""
        directory = self.dir(controller)
        if directory is None:
            raise NotFound(f"cgroup controller {controller} is not available on this host")
        try:
            return (directory / filename).read_text()
        except FileNotFoundError as exc:
            raise NotFound(f"cgroup file {directory / filename} does not exist") from exc

    def write(self, controller: str, filename: str, value: str) -> None:
        """Write one control file (``RuntimeFailure`` with the kernel's reason on error)."""
        directory = self.dir(controller)
        if directory is None:
            raise NotSupported(f"cgroup controller {controller} is not available on this host")
        try:
            (directory / filename).write_text(value)
        except OSError as exc:
            raise RuntimeFailure(f"cannot write {value!r} to {directory / filename}: "
                                 f"{exc.strerror or exc}") from exc

    def create(self, controllers: tuple[str, ...] | None = None) -> None:
        """Make the cgroup directories (used by tests and tools; the OCI runtime makes a
        container's own). On v1 ``cpuset`` is initialised from its parent like runc does;
        on v2 the parent's ``cgroup.subtree_control`` is extended with every controller
        the parent offers among :data:`V2_CONTAINER_CONTROLLERS`."""
        if self.layout.mode == "v2":
            assert self.layout.unified is not None
            _mkdir_v2(self.layout.unified, self.path.strip("/"))
            return
        for controller in controllers or tuple(self.layout.v1_mounts):
            directory = self.dir(controller)
            if directory is None:
                continue
            mount = self.layout.v1_mounts[controller]
            _mkdir_v1(mount, directory, cpuset=(controller == "cpuset"
                                                or "cpuset" in _comounted(self.layout, mount)))

    def add_pid(self, pid: int, controllers: tuple[str, ...] | None = None) -> None:
        """Move process ``pid`` into this cgroup (every given controller; all by default)."""
        if self.layout.mode == "v2":
            self.write("memory", "cgroup.procs", str(pid))
            return
        done: set[Path] = set()
        for controller in controllers or tuple(self.layout.v1_mounts):
            directory = self.dir(controller)
            if directory is None or directory in done or not directory.is_dir():
                continue
            done.add(directory)
            try:
                (directory / "cgroup.procs").write_text(str(pid))
            except OSError as exc:
                raise RuntimeFailure(f"cannot move pid {pid} into {directory}: "
                                     f"{exc.strerror or exc}") from exc

    def pids(self) -> list[int]:
        """All processes in this cgroup and its descendants, sorted (``[]`` if gone)."""
        return pids_of(self)

    def freezer_state(self) -> str:
        """``THAWED``, ``FREEZING`` or ``FROZEN`` (v2's ``cgroup.events`` mapped to these)."""
        return freezer_state(self)

    def freeze(self, timeout: float = 5.0) -> None:
        """Freeze every process of the cgroup and wait until the kernel says FROZEN."""
        set_frozen(self, True, timeout)

    def thaw(self, timeout: float = 5.0) -> None:
        """Thaw the cgroup and wait until it is THAWED."""
        set_frozen(self, False, timeout)

    def remove(self, timeout: float = 2.0) -> list[Path]:
        """Remove the cgroup in every hierarchy, children first; see :func:`remove_tree`."""
        removed: list[Path] = []
        for directory in self.layout.dirs_for(self.path):
            removed.extend(remove_tree(directory, timeout))
        return removed


def _comounted(layout: CgroupLayout, mount: Path) -> set[str]:
    return {name for name, path in layout.v1_mounts.items() if path == mount}


def _mkdir_v1(mount: Path, directory: Path, cpuset: bool) -> None:
    rel = directory.relative_to(mount)
    current = mount
    for part in rel.parts:
        parent = current
        current = current / part
        if not _mkdir(current):
            continue
        if cpuset:
            # A new v1 cpuset starts empty and accepts no task until cpus/mems are set.
            for name in ("cpuset.cpus", "cpuset.mems"):
                if not (current / name).read_text().strip():
                    (current / name).write_text((parent / name).read_text().strip() or "0")


def _mkdir_v2(unified: Path, rel: str) -> None:
    current = unified
    for part in Path(rel).parts:
        parent = current
        current = current / part
        available = (parent / "cgroup.controllers").read_text().split()
        enabled = set((parent / "cgroup.subtree_control").read_text().split())
        for controller in available:
            if controller not in V2_CONTAINER_CONTROLLERS:
                continue
            if controller in enabled:
                continue
            try:
                (parent / "cgroup.subtree_control").write_text(f"+{controller}")
            except OSError:
                # e.g. "no internal processes" on a non-root cgroup with members: skip it.
                pass
        _mkdir(current)


def _mkdir(directory: Path) -> bool:
    """Create one cgroup directory: True if made, False if it was there; any other failure is a
    RuntimeFailure naming it."""
    try:
        directory.mkdir()
    except FileExistsError:
        return False
    except OSError as exc:
        raise RuntimeFailure(f"cannot create cgroup {directory}: {exc.strerror or exc}") from exc
    return True


def _pid_dir(cgroup: Cgroup) -> Path | None:
    """The hierarchy whose directory lists the cgroup's processes."""
    if cgroup.layout.mode == "v2":
        return cgroup.dir("memory") if cgroup.layout.unified else None
    for controller in V1_CONTROLLERS:
        directory = cgroup.dir(controller)
        if directory is not None and directory.is_dir():
            return directory
    if cgroup.layout.unified is not None:
        directory = cgroup.layout.unified / cgroup.path.strip("/")
        if directory.is_dir():
            return directory
    return None


def pids_in_dir(directory: Path) -> list[int]:
    """PIDs in ``directory``'s ``cgroup.procs`` and in every descendant cgroup, sorted."""
    pids: set[int] = set()
    for current, _dirs, files in os.walk(directory):
        if "cgroup.procs" not in files:
            continue
        try:
            text = (Path(current) / "cgroup.procs").read_text()
        except FileNotFoundError:
            continue  # removed while walking
        pids.update(int(token) for token in text.split())
    return sorted(pids)


def pids_of(cgroup: Cgroup | str, layout: CgroupLayout | None = None) -> list[int]:
    """Every process in the cgroup (recursively, like ``runc ps``), sorted.

    ``cgroup`` is a :class:`Cgroup` or a cgroups path such as ``/dockerbank/<id>`` (then
    ``layout`` is detected when not given). An absent cgroup has no processes: ``[]``.
    """
    if isinstance(cgroup, str):
        cgroup = Cgroup(layout or detect_layout(), cgroup)
    directory = _pid_dir(cgroup)
    if directory is None or not directory.is_dir():
        return []
    return pids_in_dir(directory)


def parse_flat_keyed(text: str) -> dict[str, int]:
    """Parse flat-keyed ``key value`` files (``cgroup.events``, ``memory.events``, ``memory.stat``, ``cpu.stat``)."""
    result: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                result[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return result


def freezer_state(cgroup: Cgroup) -> str:
    """The cgroup's freezer state: ``THAWED``, ``FREEZING`` or ``FROZEN``.

    v1 reads ``freezer.state``; v2 reads ``cgroup.freeze`` (requested) and the ``frozen``
    key of ``cgroup.events`` (reached). ``NotFound`` if the cgroup does not exist.
    """
    if cgroup.layout.mode == "v2":
        wanted = cgroup.read("freezer", "cgroup.freeze").strip() == "1"
        frozen = parse_flat_keyed(cgroup.read("freezer", "cgroup.events")).get("frozen", 0) == 1
        if frozen:
            return "FROZEN"
        return "FREEZING" if wanted else "THAWED"
    if not cgroup.layout.has("freezer"):
        raise NotSupported("the cgroup freezer is not available on this host")
    return cgroup.read("freezer", "freezer.state").strip()


def set_frozen(cgroup: Cgroup, frozen: bool, timeout: float = 5.0) -> None:
    """Freeze (``True``) or thaw (``False``) through the freezer and wait for the result.

    Raises ``RuntimeFailure`` when the state is not reached within ``timeout`` seconds
    (a process in an uninterruptible sleep can keep a v1 cgroup FREEZING).
    """
    want = "FROZEN" if frozen else "THAWED"
    if cgroup.layout.mode == "v2":
        cgroup.write("freezer", "cgroup.freeze", "1" if frozen else "0")
    else:
        if not cgroup.layout.has("freezer"):
            raise NotSupported("the cgroup freezer is not available on this host")
        cgroup.write("freezer", "freezer.state", want)
    deadline = time.monotonic() + timeout
    while True:
        state = freezer_state(cgroup)
        if state == want:
            return
        if time.monotonic() > deadline:
            raise RuntimeFailure(f"cgroup {cgroup.path} stayed {state} instead of becoming {want}")
        if cgroup.layout.mode != "v2":
            # v1 retries the transition on every write of the wanted state.
            cgroup.write("freezer", "freezer.state", want)
        time.sleep(0.005)


def remove_tree(directory: Path, timeout: float = 2.0) -> list[Path]:
    """Remove a cgroup directory and all its child cgroups, deepest first (cgroupfs
    only allows ``rmdir``; the control files vanish with it).

    Returns the directories removed (``[]`` if ``directory`` did not exist). A cgroup
    that still has processes cannot be removed: ``Conflict``-like ``RuntimeFailure``
    naming the pids. ``EBUSY`` right after the last process exited is retried until
    ``timeout``.
    """
    if not directory.is_dir():
        return []
    removed: list[Path] = []
    subdirs = [Path(cur) for cur, _dirs, _files in os.walk(directory)]
    for sub in sorted(subdirs, key=lambda p: len(p.parts), reverse=True):
        deadline = time.monotonic() + timeout
        while True:
            try:
                sub.rmdir()
                removed.append(sub)
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno == errno.EBUSY and time.monotonic() < deadline:
                    time.sleep(0.01)
                    continue
                pids = pids_in_dir(sub) if sub.is_dir() else []
                detail = f" (processes still inside: {' '.join(map(str, pids))})" if pids else ""
                raise RuntimeFailure(f"cannot remove cgroup {sub}: {exc.strerror or exc}{detail}") from exc
    return removed


def list_children(layout: CgroupLayout, parent: str = CGROUP_PARENT) -> list[str]:
    """Names of the cgroups directly below ``parent`` in any hierarchy (for
    ``system check`` to compare with the containers it knows), sorted."""
    names: set[str] = set()
    for directory in layout.dirs_for(parent):
        try:
            names.update(entry.name for entry in directory.iterdir() if entry.is_dir())
        except FileNotFoundError:
            continue
    return sorted(names)


def _probe_dir(layout: CgroupLayout, controller: str) -> Path | None:
    """A non-root cgroup directory of ``controller`` (root cgroups lack many files)."""
    if layout.mode == "v2":
        base = layout.unified
    else:
        base = layout.v1_mounts.get(controller)
    if base is None:
        return None
    for candidate in (base / CGROUP_PARENT.strip("/"),):
        if candidate.is_dir():
            return candidate
    try:
        for entry in sorted(base.iterdir()):
            if entry.is_dir():
                return entry
    except OSError:
        return None
    return None


def blkio_weight_available(layout: CgroupLayout) -> bool:
    """Whether ``--blkio-weight`` can be honoured (v1 ``blkio.weight``/``blkio.bfq.weight``,
    v2 ``io.weight``/``io.bfq.weight``, looked up in a non-root cgroup)."""
    names = ("io.weight", "io.bfq.weight") if layout.mode == "v2" else ("blkio.weight", "blkio.bfq.weight")
    if not layout.has("blkio"):
        return False
    base = layout.unified if layout.mode == "v2" else layout.v1_mounts["blkio"]
    assert base is not None
    if any((base / name).exists() for name in names):
        return True
    probe = _probe_dir(layout, "blkio")
    return probe is not None and any((probe / name).exists() for name in names)


def swap_limit_available(layout: CgroupLayout) -> bool:
    """Whether ``--memory-swap`` can be honoured (v1 ``memory.memsw.limit_in_bytes``,
    v2 ``memory.swap.max`` in a non-root cgroup)."""
    if not layout.has("memory"):
        return False
    if layout.mode == "v2":
        probe = _probe_dir(layout, "memory")
        return probe is not None and (probe / "memory.swap.max").exists()
    return (layout.v1_mounts["memory"] / "memory.memsw.limit_in_bytes").exists()


@dataclass
class StaleCgroups:
    """What :func:`remove_stale` did: names removed, and names kept because processes
    still live in them (orphans of a lost container; ``system check`` reports them)."""

    removed: list[str] = field(default_factory=list)
    busy: dict[str, list[int]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)   # name -> why it could not be removed


def age(layout: CgroupLayout, path: str) -> float:
    """Seconds since the cgroup ``path`` changed last (its directory's mtime in any hierarchy;
    0 when it is gone)."""
    import time

    newest = 0.0
    for directory in layout.dirs_for(path):
        try:
            newest = max(newest, directory.stat().st_mtime)
        except FileNotFoundError:
            continue
    return time.time() - newest if newest else 0.0


def remove_stale(layout: CgroupLayout, keep: set[str] | frozenset[str],
                 parent: str = CGROUP_PARENT, timeout: float = 2.0,
                 drain: set[str] | frozenset[str] = frozenset()) -> StaleCgroups:
    """Remove the cgroups below ``parent`` whose name (container id) is not in ``keep``
    and which hold no process, in every hierarchy (``system check``'s repair). The processes of a
    container in ``drain`` (one of ours that just ended) get ``timeout`` seconds to exit first."""
    import time

    report = StaleCgroups()
    for name in list_children(layout, parent):
        if name in keep:
            continue
        cgroup = Cgroup(layout, f"{parent}/{name}")
        pids = cgroup.pids()
        deadline = time.monotonic() + timeout
        while pids and name in drain and time.monotonic() < deadline:
            time.sleep(0.05)
            pids = cgroup.pids()
        if pids:
            report.busy[name] = pids
            continue
        try:
            cgroup.remove(timeout)
        except RuntimeFailure as exc:  # e.g. another root's container moved in meanwhile: the rest still go
            report.failed[name] = exc.message
            continue
        report.removed.append(name)
    return report


def host_cpus() -> list[int]:
    """The CPUs a container may be pinned to (``--cpuset-cpus``): this process's affinity."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def host_memory_nodes() -> list[int]:
    """The NUMA nodes a container may use (``--cpuset-mems``), from sysfs (node 0 without it)."""
    nodes: list[int] = []
    try:
        for part in Path("/sys/devices/system/node/online").read_text().strip().split(","):
            low, _, high = part.partition("-")
            nodes += range(int(low), int(high or low) + 1)
    except (OSError, ValueError):
        return [0]
    return nodes or [0]
