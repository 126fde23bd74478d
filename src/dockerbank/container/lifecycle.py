"""The container lifecycle: create, start (detached or attached), stop, kill, restart, pause,
remove, wait, and the clean-up after an exit, on overlayfs + conmon + crun/runc.

Locks: each lifecycle step of a container holds ``<run_root>/locks/<id>`` (flock), so eight
CLIs acting on one container at once serialise; the database rows change in BEGIN IMMEDIATE
transactions. Reconcile: a container recorded running whose conmon is gone is cleaned up
from conmon's exit file on the next read, so every CLI call sees the true state.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal as signals
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

from dockerbank.container import model
from dockerbank.container.model import Container, ContainerConfig, ContainerState
from dockerbank.container.names import new_id, random_name, validate_name
from dockerbank.container.options import CreateOptions, parse_device, parse_restart, parse_signal
from dockerbank.container.store import ContainerStore
from dockerbank.errors import Conflict, DockerbankError, InvalidArgument, NotFound, NotSupported, RuntimeFailure
from dockerbank.host.permissions import private_dir, write_private

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    import builtins  # annotations in classes whose list() method hides the builtin
    from typing import Any

    from dockerbank.container.boundaries import Conmon, Mounts, Network, Runtime


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339_of(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _rootless() -> bool:
    from dockerbank.host.rootless import in_user_namespace

    return in_user_namespace()


def _rootless_network(opts: CreateOptions) -> str:
    """The network of a rootless container: none (the default there); anything else is refused."""
    from dockerbank.host.rootless import ROOTLESS_NETWORK

    net = opts.network_options or {}
    if (net.get("ports") or net.get("publish_all")) and not shutil.which("slirp4netns"):
        raise NotSupported(ROOTLESS_NETWORK, exit_code=125)
    _rootless_limits(opts)
    if opts.userns and opts.userns != "host":
        raise NotSupported("--userns=auto is root's: a rootless engine's containers share the user's own "
                           "subordinate IDs", exit_code=125)
    if opts.network in ("", "default"):   # Docker's default: the bridge, when slirp4netns gives it a way out
        return "bridge" if shutil.which("slirp4netns") else "none"
    return opts.network


def _rootless_limits(limits: Any) -> None:
    """Refuse, in one line, the limits (attributes of ``limits``) whose cgroup controller the
    host does not delegate to the rootless engine's user (host/cgdelegation.py)."""
    from dockerbank.host import cgdelegation

    refused = cgdelegation.refusal(cgdelegation.current(), limits)
    if refused:
        raise NotSupported(refused, exit_code=125)


def _host_sys_for_rootless(spec: dict) -> None:
    """A rootless container in the host's network namespace cannot mount a sysfs (that needs a
    network namespace its user namespace owns): it gets the host's /sys bound read-only instead,
    cgroups included (Podman does the same)."""
    mounts = [m for m in spec["mounts"] if m["destination"] not in ("/sys", "/sys/fs/cgroup")]
    mounts.insert(0, {"destination": "/sys", "type": "bind", "source": "/sys",
                      "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
    spec["mounts"] = mounts


def _closed_ancestor(root: Path) -> Path | None:
    """The first directory above ``root`` that other users cannot enter (None: all can)."""
    for parent in reversed(root.absolute().parents):
        try:
            if not os.stat(parent).st_mode & 0o001:
                return parent
        except OSError:
            return parent
    return None



class ContainerService:
    """Containers of one Dockerbank root (``engine.containers``).

    The side effects are objects handed in (see :mod:`dockerbank.container.boundaries`): the
    OCI ``runtime``, ``conmon``, ``mounts`` and the ``network`` driver. Each one not given is the
    real one, built on first use (a ``ps`` pays for none of them), so unit tests pass fakes and
    everything else gets crun/runc, conmon, overlayfs and the network service.
    """

    def __init__(self, engine, *, runtime: Runtime | None = None, conmon: Conmon | None = None,
                 mounts: Mounts | None = None, network: Network | None = None):
        self.engine = engine
        self.config = engine.config
        self.store = ContainerStore(engine.db)
        # given ones shadow the cached properties below that build the real ones
        for key, value in (("runtime", runtime), ("conmon", conmon), ("mounts", mounts), ("network", network)):
            if value is not None:
                self.__dict__[key] = value

    # --- paths and helpers ------------------------------------------------------------------

    def dir(self, cid: str) -> Path:
        return self.config.containers_dir / cid

    def _event(self, container: Container, action: str, **extra: str) -> None:
        """Record a container event (``docker events``) whoever acts: the CLI, conmon's exit
        command or the API service."""
        from dockerbank.events.log import container_attributes, emit

        emit(self.config, "container", action, container.id, container_attributes(container, **extra))

    def log_path(self, cid: str) -> Path:
        return self.dir(cid) / "ctr.log"

    @cached_property
    def runtime(self) -> Runtime:
        """The OCI runtime that works on this host (detected once, cached in the run root)."""
        from dockerbank.runtime.detect import detect
        from dockerbank.runtime.oci import OciRuntime

        return OciRuntime(detect(self.config.run_root), self.config.run_root / "runtime")

    @cached_property
    def conmon(self) -> Conmon:
        """conmon (the module's functions are the boundary's methods)."""
        from dockerbank.runtime import conmon

        return conmon

    @cached_property
    def mounts(self) -> Mounts:
        from dockerbank.host.mounts import HostMounts

        return HostMounts()

    @cached_property
    def mapped_layers(self):
        """The image layers of user-namespaced containers: ID-mapped or copied per mapping."""
        from dockerbank.container.mappedlayers import MappedLayers

        return MappedLayers(self.config)

    @cached_property
    def network(self) -> Network:
        from dockerbank.network.driver import NetworkDriver

        return NetworkDriver(self.engine)

    @contextmanager
    def lock(self, cid: str) -> Iterator[None]:
        """The container's lifecycle lock (flock on a file in the run root)."""
        locks = self.config.run_root / "locks"
        try:
            fd = os.open(str(locks / cid), os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:
            locks.mkdir(parents=True, exist_ok=True)
            fd = os.open(str(locks / cid), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _drop_lock_file(self, cid: str) -> None:
        try:
            os.unlink(self.config.run_root / "locks" / cid)
        except OSError:
            pass

    # --- reading ----------------------------------------------------------------------------

    def get(self, ref: str) -> Container:
        """A container by ID, name or prefix, reconciled with reality."""
        return self.reconcile(self.store.find(ref))

    def list(self, statuses: Sequence[str] | None = None) -> list[Container]:
        """Containers newest first, each reconciled with its monitor; only those recorded in one
        of ``statuses`` when given."""
        return [self.reconcile(c) for c in self.store.list(statuses)]

    def reconcile(self, container: Container) -> Container:
        """A container recorded active whose conmon is gone becomes exited (cheap check via /proc)."""
        state = container.state
        if state.status not in model.ACTIVE and state.status != model.RESTARTING:
            return container
        if self.conmon.alive(state.conmon_pid, state.conmon_start):
            if state.health is not None and state_has_health(container.config):
                self._ensure_health_scheduler()
            return container
        try:
            self.cleanup(container.id)
            return self.store.get(container.id)
        except NotFound:
            container.state.status = model.EXITED
            return container

    def check(self, repair: bool = False, grace: float = 600.0) -> builtins.list[str]:
        """``system check``: what a crash or a killed CLI left behind, repaired with ``repair``.

        Finds containers recorded running whose conmon is gone (cleaned up from the exit file),
        overlay mounts and runtime state of containers that are not live (re-checked under the
        container's lock, so a concurrent start is never undone), and directories without a row
        older than ``grace`` seconds (younger ones may be a ``create`` in progress). Returns one
        line per finding.
        """
        import time

        findings: list[str] = []
        rows = {c.id: c for c in self.store.list()}
        for container in rows.values():
            if container.state.status in model.ACTIVE and not self.conmon.alive(
                    container.state.conmon_pid, container.state.conmon_start):
                findings.append(f"container {container.id[:12]} recorded {container.state.status} but its monitor "
                                "is gone: marked exited")
                if repair:
                    self.cleanup(container.id)
        base = self.config.containers_dir
        for mount in self.mounts.overlay_mounts_under(base):
            cid = os.path.relpath(mount.mount_point, base).split("/")[0]
            if not self._live_under_lock(cid):
                findings.append(f"stale overlay mount {mount.mount_point}: unmounted")
                if repair:
                    self.mounts.unmount(mount.mount_point, lazy=True)
        if base.is_dir():
            now = time.time()
            for entry in base.iterdir():
                if entry.name in rows or len(entry.name.split(".rm-")[-1]) != 64:
                    continue
                try:
                    if now - entry.stat().st_mtime < grace:
                        continue
                except FileNotFoundError:
                    continue
                findings.append(f"directory of unknown container {entry.name[:16]}: removed")
                if repair:
                    try:
                        shutil.rmtree(entry)
                    except FileNotFoundError:
                        pass
                    except OSError as exc:  # say so rather than claim it: the next check finds it again
                        findings[-1] = (f"directory of unknown container {entry.name[:16]}: cannot remove it "
                                        f"({exc.filename}: {exc.strerror or exc})")
        findings += self.mapped_layers.check(repair, grace)
        state_root = self.config.run_root / "runtime"
        if state_root.is_dir():
            for entry in state_root.iterdir():
                if entry.is_dir() and not self._live_under_lock(entry.name):
                    findings.append(f"runtime state of container {entry.name[:12]} that is not running: deleted")
                    if repair:
                        try:
                            self.runtime.delete(entry.name, force=True)
                        except DockerbankError:
                            shutil.rmtree(entry, ignore_errors=True)
        findings += self._check_shm(repair)
        return findings

    def _check_shm(self, repair: bool) -> builtins.list[str]:
        """Shareable containers' /dev/shm: of removed containers (unmounted, removed; the pods'
        check in one code path, container.shmdirs) and still mounted for one that does not run
        (its clean-up was killed: unmounted, re-checked under its lock as the overlays are)."""
        known: set[str] = set()

        def ids() -> set[str]:
            known.update(c.id for c in self.store.list())
            return known

        findings = self.shm_dirs.check(ids, repair)
        if self.shm_dirs.base.is_dir():
            for entry in sorted(self.shm_dirs.base.iterdir()):
                if entry.name in known and self.mounts.is_mounted(self.shm_dirs.path(entry.name)) \
                        and not self._live_under_lock(entry.name):
                    findings.append(f"stale /dev/shm of container {entry.name[:12]} that is not running: unmounted")
                    if repair:
                        self.shm_dirs.unmount(entry.name)
        return findings

    def _live_under_lock(self, cid: str) -> bool:
        """Whether ``cid`` is running or paused, read under its lock (a start may be under way)."""
        with self.lock(cid):
            try:
                return self.store.get(cid).state.status in model.ACTIVE
            except NotFound:
                return False

    # --- create -----------------------------------------------------------------------------

    def _default_log_config(self):
        """The root's default log driver (``<root>/config.json``, as docker's daemon.json)."""
        from dockerbank import settings
        from dockerbank.container import logconfig

        return logconfig.root_default(settings.load(self.config.root), str(settings.path(self.config.root)))

    def create(self, opts: CreateOptions) -> Container:
        """Record a container and prepare its directory (no process yet)."""
        from dockerbank.container import logconfig
        from dockerbank.volume import mounts as mnt

        # a bad driver or option (given, or the root's default) creates nothing
        log_config = logconfig.parse(*logconfig.with_default(opts.log_driver, opts.log_opts,
                                                             self._default_log_config()))
        from dockerbank.container import userns

        network_name = _rootless_network(opts) if _rootless() else opts.network  # refusals before anything exists
        userns_mode = userns.parse(opts.userns or ("" if _rootless() else self.default_userns()))
        if userns_mode.kind == userns.AUTO:
            if opts.privileged:
                raise InvalidArgument("privileged mode is incompatible with user namespaces: use --userns=host",
                                      exit_code=125)
            if opts.network == "host":
                raise InvalidArgument("--network host is incompatible with --userns=auto (the host's /sys "
                                      "belongs to host root): use --userns=host", exit_code=125)
            closed = _closed_ancestor(self.config.root)
            if closed is not None:
                raise InvalidArgument(f"--userns=auto: the container's root (an unprivileged host ID) cannot walk "
                                      f"to the Dockerbank root: {closed} is closed to other users; give it o+x "
                                      f"(chmod o+x {closed}) or keep the root under such directories", exit_code=125)
        image = self.engine.images.resolve(opts.image)
        image_cfg = self.engine.images.image_config(image.id).get("config") or {}
        name = validate_name(opts.name) if opts.name else None
        if name and self.store.name_taken(name):
            row = self.store.find(name)
            from dockerbank.container.store import name_conflict

            raise name_conflict(name, row.id)
        entrypoint = opts.entrypoint if opts.entrypoint is not None else (image_cfg.get("Entrypoint") or [])
        if opts.entrypoint is not None and not opts.command:
            cmd: list[str] = []
        else:
            cmd = opts.command or (image_cfg.get("Cmd") or [])
        full = list(entrypoint or []) + list(cmd)
        if not full:
            raise InvalidArgument("No command specified", exit_code=125)
        env = list(image_cfg.get("Env") or [])
        for item in opts.env:
            key = item.split("=", 1)[0]
            env = [e for e in env if e.split("=", 1)[0] != key] + [item]
        labels = dict(image_cfg.get("Labels") or {})
        labels.update(opts.labels)
        network_cfg = self.network.validate_create(network_name, opts.network_options)
        network = network_cfg["kind"]
        modes = self._check_host_modes(opts, network)
        cid = new_id()
        hostname = opts.hostname or (os.uname().nodename if network == "host" or modes["uts_mode"] == "host"
                                     else cid[:12])
        if modes["uts_mode"].startswith("container:"):  # a pod's member sees its infra's hostname
            hostname = self.store.get(modes["uts_mode"][len("container:"):]).config.hostname
        specs = list(opts.mounts)
        mnt.validate(specs, os.path.exists)
        for ref in opts.volumes_from:
            other_ref, mode = mnt.parse_volumes_from(ref)
            other = self.store.find(other_ref)
            specs = mnt.merge_volumes_from(specs, [mnt.MountSpec.from_dict(m) for m in other.config.mounts], mode,
                                           container=other.id)
        specs = mnt.merge_image_volumes(specs, image_cfg.get("Volumes"))
        for spec in specs:
            if spec.type == mnt.BIND and spec.create_source and not os.path.exists(spec.source):
                os.makedirs(spec.source, exist_ok=True)
        devices = [parse_device(d) for d in opts.devices]
        for dev in devices:
            if not os.path.exists(dev["PathOnHost"]):
                raise InvalidArgument(f"error gathering device information while adding custom device "
                                      f"\"{dev['PathOnHost']}\": no such file or directory", exit_code=125)
        from dockerbank.container.health import merge as merge_healthcheck
        from dockerbank.container.health import validate as validate_healthcheck

        validate_healthcheck(opts.healthcheck)
        config = ContainerConfig(
            image=opts.image, image_id=image.id, path=full[0], args=full[1:],
            entrypoint=list(entrypoint) if entrypoint else None, cmd=list(cmd) if cmd else None, env=env,
            workdir=opts.workdir or image_cfg.get("WorkingDir") or "", user=opts.user or image_cfg.get("User") or "",
            hostname=hostname, labels=labels, tty=opts.tty, open_stdin=opts.interactive,
            mounts=[], read_only=opts.read_only, privileged=opts.privileged, cap_add=list(opts.cap_add),
            cap_drop=list(opts.cap_drop), security_opt=list(opts.security_opt), devices=devices, init=opts.init,
            restart_policy=parse_restart(opts.restart), auto_remove=opts.auto_remove, memory=opts.memory,
            memory_swap=opts.memory_swap, nano_cpus=opts.nano_cpus, cpu_shares=opts.cpu_shares,
            pids_limit=opts.pids_limit, blkio_weight=opts.blkio_weight, network_mode=network if network in
            ("none", "host") else (opts.network or "default"), network=network_cfg,
            stop_signal=opts.stop_signal or image_cfg.get("StopSignal") or "SIGTERM", stop_timeout=opts.stop_timeout,
            exposed_ports=dict(image_cfg.get("ExposedPorts") or {}), image_volumes=dict(image_cfg.get("Volumes") or {}),
            attach=list(opts.attach), healthcheck=merge_healthcheck(opts.healthcheck, image_cfg.get("Healthcheck")),
            log_config=log_config.to_dict(), volumes_from=list(opts.volumes_from), **modes, pod=opts.pod,
            is_infra=opts.infra,
            # a shareable container owns a /dev/shm others bind (docker's containers/<id>/mounts/shm),
            # unless a mount of its own is there: then, as dockerd's, it is not joinable
            shm_dir=opts.shm_dir or (str(self.shm_dirs.path(cid)) if modes["ipc_mode"] == "shareable" and not any(
                os.path.normpath(spec.target) == "/dev/shm" for spec in specs) else ""),
        )
        from dockerbank.runtime.spec import capabilities

        capabilities(config.cap_add, config.cap_drop, False)  # reject bad names before anything exists
        if config.restart_policy["Name"] != "no" and config.auto_remove:
            raise InvalidArgument("Conflicting options: --restart and --rm", exit_code=125)
        base = private_dir(self.dir(cid))
        for sub in ("upper", "work", "merged"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        # Docker's "init layer": the mount points of the files bind-mounted at start exist in
        # a lower dir of their own, so they never show up in the container's layer (diff, commit)
        init = base / "init"
        (init / "etc").mkdir(parents=True, exist_ok=True)
        for rel in ("etc/hostname", "etc/hosts", "etc/resolv.conf"):
            (init / rel).touch()
        (base / "hostname").write_text(hostname + "\n")
        from dockerbank.network.etcfiles import host_nameservers, hosts_file, resolv_conf

        if network == "host":
            try:
                hosts_text = Path("/etc/hosts").read_text()
            except OSError:
                hosts_text = hosts_file(hostname, [])
            try:
                resolv_text = Path("/etc/resolv.conf").read_text()
            except OSError:
                resolv_text = ""
        else:
            hosts_text = hosts_file(hostname, [])
            try:
                servers = host_nameservers(Path("/etc/resolv.conf").read_text())
            except OSError:
                servers = []
            resolv_text = resolv_conf(servers)
        (base / "hosts").write_text(hosts_text)
        (base / "resolv.conf").write_text(resolv_text)
        drawn = None if name is not None else (lambda: random_name(self.store.name_taken))
        container = Container(cid, name or random_name(self.store.name_taken), now_rfc3339(), config,
                              ContainerState())
        try:
            resolved_specs = self._volumes_for(cid, specs)
            config.mounts = [s.to_dict() for s in resolved_specs]
            if userns_mode.kind == userns.AUTO:
                with self.lock("userns"):  # from the choice of IDs until the row that holds them exists
                    config.userns = self._allocate_userns(userns_mode.size)
                    self._give_to_userns(base, config.userns)
                    self.store.insert(container, rename=drawn)
            else:
                self.store.insert(container, rename=drawn)
        except BaseException:
            try:
                self.engine.volumes.remove_anonymous_of(cid)
            except DockerbankError:
                pass  # the volumes of a container that was never recorded: system check finds them
            shutil.rmtree(base, ignore_errors=True)
            raise
        self._event(container, "create")
        return container

    def _check_host_modes(self, opts: CreateOptions, network: str) -> dict[str, Any]:
        """The namespace, placement and link options checked (container.hostmodes), as stored."""
        from dockerbank.container import hostmodes as hm
        from dockerbank.host.cgroups import host_cpus, host_memory_nodes

        pid_kind, pid_ref = hm.check_pid_mode(opts.pid_mode)
        pid_mode = f"container:{self.store.find(pid_ref).id}" if pid_ref else pid_kind
        from dockerbank.runtime.spec import device_rule

        for rule in opts.device_cgroup_rules:
            device_rule(rule)
        mac = hm.check_mac(opts.mac_address)
        if mac and network in ("host", "container"):
            raise InvalidArgument("conflicting options: mac-address and the network mode", exit_code=125)
        links = []
        for link in opts.links:
            target, alias = hm.parse_link(link)
            links.append(f"{self.store.find(target).name}:{alias}")
        return {
            "pid_mode": pid_mode, "uts_mode": self._joined_mode("UTS", opts.uts_mode) if opts.uts_mode.startswith(
                "container:") else hm.check_uts_mode(opts.uts_mode, bool(opts.hostname)),
            "ipc_mode": self._joined_mode("IPC", opts.ipc_mode) if opts.ipc_mode.startswith("container:")
            else hm.check_ipc_mode(opts.ipc_mode),
            "cgroupns_mode": hm.check_cgroupns_mode(opts.cgroupns_mode), "isolation": hm.check_isolation(opts.isolation),
            "cpuset_cpus": hm.check_cpuset(opts.cpuset_cpus, host_cpus() if opts.cpuset_cpus else [], "cpus"),
            "cpuset_mems": hm.check_cpuset(opts.cpuset_mems, host_memory_nodes() if opts.cpuset_mems else [], "mems"),
            "device_cgroup_rules": list(opts.device_cgroup_rules), "group_add": list(opts.group_add),
            "mac_address": mac, "links": links, **self._check_limits(opts, network),
        }

    @staticmethod
    def _check_limits(opts: CreateOptions, network: str) -> dict[str, Any]:
        """The resource and kernel options checked (container.hostmodes), as stored."""
        from dockerbank.container import hostmodes as hm

        hm.check_limits(oom_score_adj=opts.oom_score_adj, cpu_period=opts.cpu_period, cpu_quota=opts.cpu_quota,
                        nano_cpus=opts.nano_cpus, memory=opts.memory, memory_reservation=opts.memory_reservation,
                        shm_size=opts.shm_size)
        return {"shm_size": opts.shm_size, "ulimits": hm.check_ulimits(opts.ulimits),
                "sysctls": hm.check_sysctls(opts.sysctls, network, opts.ipc_mode), "oom_score_adj": opts.oom_score_adj,
                "cpu_period": opts.cpu_period, "cpu_quota": opts.cpu_quota,
                "memory_reservation": opts.memory_reservation}

    def default_userns(self) -> str:
        """The root's default ``--userns`` (``userns`` in ``<root>/config.json``; "" : host)."""
        from dockerbank import settings

        return str(settings.load(self.config.root).get("userns") or "")

    def set_default_userns(self, value: str) -> str:
        """Record the root's default ``--userns`` (validated); returns it."""
        from dockerbank import settings
        from dockerbank.container import userns

        mode = userns.parse(value)
        text = value.strip() if mode.kind == userns.AUTO else userns.HOST
        settings.update(self.config.root, "userns", text)
        return text

    def _allocate_userns(self, size: int) -> dict:
        """A free run of ``size`` subordinate IDs of the ``dockerbank`` user (added to /etc/subuid
        and /etc/subgid on first use), not held by any recorded container. Caller holds the lock."""
        import shutil as sh

        from dockerbank.container import userns
        from dockerbank.host import subids

        if sh.which("unshare") is None:
            raise RuntimeFailure("--userns=auto needs unshare(1): install Debian's util-linux")
        uids, gids, _ = subids.ensure_user_ranges()
        records = [c.config.userns for c in self.store.list() if c.config.userns]
        uid_start = userns.allocate(uids, userns.held(records, "uid"), size)
        gid_start = userns.allocate(gids, userns.held(records, "gid"), size)
        if uid_start is None or gid_start is None:
            which, ranges = ("/etc/subuid", uids) if uid_start is None else ("/etc/subgid", gids)
            total = sum(r.count for r in ranges)
            raise InvalidArgument(f"no free range of {size} subordinate IDs for --userns=auto: the {total} IDs of "
                                  f"user {subids.USER} in {which} are taken by {len(records)} containers; add a "
                                  f"range '{subids.USER}:<start>:<count>' to {which} or remove containers",
                                  exit_code=125)
        return userns.mapping(uid_start, gid_start, size)

    def _give_to_userns(self, base: Path, record: dict) -> None:
        """Let the container's root (an unprivileged host ID) reach what the runtime mounts for it,
        and nothing more: the root and containers directories become 0711 (enter, never list; as
        Docker's userns-remap does), the container's own directory 0710 with the group of the
        container's root (no real user has a subordinate ID as group), its layer's root and the
        /etc files it may write belong to the container's root."""
        from dockerbank.container import userns

        uid, gid = userns.host_root(record)
        for path in (self.config.root, self.config.containers_dir):
            if os.stat(path).st_mode & 0o777 != 0o711:
                os.chmod(path, 0o711)
        os.chown(base, 0, gid)
        os.chmod(base, 0o710)
        for rel in ("upper", "hostname", "hosts", "resolv.conf"):
            os.chown(base / rel, uid, gid)

    def _joined_mode(self, kind: str, value: str) -> str:
        """A namespace joined from another container (a pod's member): ``container:<full id>``;
        '' for a private one; docker's message for anything else."""
        if value in ("", "private"):
            return ""
        if not value.startswith("container:") or not value[len("container:"):]:
            raise InvalidArgument(f"invalid {kind} mode: {value}", exit_code=125)
        return "container:" + self.store.find(value[len("container:"):]).id

    def _namespace_paths(self, cfg: ContainerConfig, ipc_owner: Container | None) -> dict[str, str]:
        """The IPC and UTS namespaces a starting container joins (kind -> /proc/<pid>/ns/<kind>;
        a joined PID namespace is ``_pid_namespace``'s); each owner must run."""
        paths = {}
        if ipc_owner is not None:
            paths["ipc"] = f"/proc/{ipc_owner.state.pid}/ns/ipc"
        if cfg.uts_mode.startswith("container:"):
            owner = self.get(cfg.uts_mode[len("container:"):])
            if owner.state.status not in model.ACTIVE or owner.state.pid <= 0:
                raise Conflict(f"cannot join UTS of a non running container: {owner.id}")
            paths["uts"] = f"/proc/{owner.state.pid}/ns/uts"
        return paths

    def _ipc_owner(self, cfg: ContainerConfig) -> Container | None:
        """The container whose IPC namespace (and /dev/shm) a starting ``--ipc container:X`` joins:
        it must run and be shareable (``--ipc shareable`` or ``host``, a pod's infra or a joiner of
        one of these), with docker's messages otherwise; None for a namespace of its own."""
        if not cfg.ipc_mode.startswith("container:"):
            return None
        ref = cfg.ipc_mode[len("container:"):]
        prefix = f"can't join IPC of container {ref}"
        try:
            owner = self.get(ref)
        except NotFound as exc:
            raise NotFound(f"{prefix}: {exc.message}") from None
        # dockerd's plain errors: HTTP 500, exit 1 from ``start`` (125 from ``run``)
        if owner.state.status not in model.ACTIVE or owner.state.pid <= 0:
            raise DockerbankError(f"{prefix}: container {owner.id} is not running")
        if not (owner.config.shm_dir or owner.config.ipc_mode == "host" or owner.config.is_infra):
            raise DockerbankError(f"{prefix}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)")
        return owner

    def _volumes_for(self, cid: str, specs: builtins.list) -> builtins.list:
        """Create named/anonymous volumes for the volume mounts; return the specs with names filled in."""
        from dataclasses import replace

        from dockerbank.volume import mounts as mnt

        result = []
        for spec in specs:
            if spec.type == mnt.VOLUME:
                if spec.anonymous:
                    volume = self.engine.volumes.create(None, anonymous=True, attach_to=cid)
                    spec = replace(spec, source=volume.name)
                else:
                    self.engine.volumes.ensure(spec.source, labels=spec.labels or None,
                                               options=spec.volume_options or None, attach_to=cid)
            result.append(spec)
        return result

    # --- start ------------------------------------------------------------------------------

    def _mount_rootfs(self, container: Container) -> Path:
        """Mount the overlay (image layers below, the container's own layer on top)."""
        base = self.dir(container.id)
        merged = base / "merged"
        if self.mounts.is_mounted(merged):
            if container.state.mounted:
                return merged
            # mounted though no row says so (a crash between a mount and its record): a second
            # overlay would stack on the stale one and hide it from every later unmount
            self._unmount_rootfs(container.id)
        image = self.engine.images.get(container.config.image_id)
        lowers = list(self.engine.images.layers.lower_dirs(image.top_chain))
        if (base / "init").is_dir():
            lowers.insert(0, base / "init")
        if not lowers:
            (base / "empty").mkdir(exist_ok=True)
            lowers = [base / "empty"]
        record = container.config.userns
        extra = {}
        if record:   # ID-mapped layers, or copies with shifted owners where the kernel cannot
            lowers, idmap = self.mapped_layers.lowers(container.id, lowers, record)
            extra = {"idmap": idmap} if idmap else {}
        self.mounts.mount_overlay(merged, lowers, base / "upper", base / "work", layers_dir=self.config.layers_dir,
                                  **extra)
        return merged

    @cached_property
    def shm_dirs(self):
        """The shareable containers' /dev/shm tmpfs (container.shmdirs, as the pods' are)."""
        from dockerbank.container.shmdirs import ShmDirs

        return ShmDirs(self.config.run_root / "containers", self.mounts, "container")

    def _release_shm(self, container: Container) -> None:
        """After a shareable container's exit its /dev/shm goes, as docker's (lazily: joiners still
        running keep its files); the next start mounts a new one. A pod's lives until ``pod rm``."""
        if container.config.ipc_mode == "shareable":
            try:
                self.shm_dirs.unmount(container.id)
            except DockerbankError:
                pass  # system check unmounts it

    def _unmount_rootfs(self, cid: str) -> None:
        """Unmount the container's root, each overlay stacked there (a bounded number) included."""
        merged = self.dir(cid) / "merged"
        try:
            for _ in range(8):
                if not self.mounts.unmount(merged, lazy=True):
                    break
        except DockerbankError:
            pass

    def _spec(self, container: Container, rootfs: Path) -> dict:
        from dockerbank.volume import mounts as mnt
        from dockerbank.container.users import resolve_user
        from dockerbank.runtime import spec as specs

        cfg = container.config
        base = self.dir(container.id)
        ipc_owner = self._ipc_owner(cfg)  # first: a refused join costs nothing more

        def read(rel: str) -> str:
            try:
                return (rootfs / rel).read_text(errors="replace")
            except OSError:
                return ""

        uid, gid, extra = resolve_user(cfg.user or "0", read("etc/passwd"), read("etc/group"))
        if cfg.group_add:
            from dockerbank.container.hostmodes import group_ids

            extra = tuple(dict.fromkeys([*extra, *group_ids(cfg.group_add, read("etc/group"))]))
        if cfg.workdir:
            from dockerbank.host.fs import scoped_path

            target = scoped_path(rootfs, cfg.workdir)
            if not target.exists():
                target.mkdir(parents=True, exist_ok=True)
        resolved = []
        for raw in cfg.mounts:
            spec = mnt.MountSpec.from_dict(raw)
            if spec.type == mnt.VOLUME:
                if not spec.nocopy:
                    try:
                        self.engine.volumes.populate_from_image(spec.source, rootfs, spec.target)
                    except DockerbankError:
                        pass
                if cfg.userns:
                    from dockerbank.container import userns

                    self.engine.volumes.share_with(spec.source, *userns.host_root(cfg.userns))
                resolved.append(self.engine.volumes.resolve(spec))
            elif spec.type == mnt.BIND:
                resolved.append(mnt.resolve_bind(spec))
            else:
                resolved.append(mnt.resolve_tmpfs(spec))
        devices = []
        for dev in cfg.devices:
            st = os.stat(dev["PathOnHost"])
            import stat as stat_mod

            kind = "c" if stat_mod.S_ISCHR(st.st_mode) else "b" if stat_mod.S_ISBLK(st.st_mode) else None
            if kind is None:
                raise InvalidArgument(f"{dev['PathOnHost']} is not a device", exit_code=125)
            devices.append(specs.Device(dev["PathInContainer"], kind, os.major(st.st_rdev), os.minor(st.st_rdev),
                                        st.st_mode & 0o777, st.st_uid, st.st_gid, dev["CgroupPermissions"]))
        has_swap = has_blkio = True
        if cfg.memory or cfg.blkio_weight:
            from dockerbank.host.cgroups import blkio_weight_available, detect_layout, swap_limit_available

            layout = detect_layout()
            has_swap = swap_limit_available(layout) if cfg.memory else True
            has_blkio = blkio_weight_available(layout) if cfg.blkio_weight else True
            if cfg.blkio_weight and layout.mode != "v2" and "blkio" in layout.v1_mounts:
                # the runtimes write blkio.weight itself; bfq-only hosts discard the weight like Docker
                has_blkio = has_blkio and (layout.v1_mounts["blkio"] / "blkio.weight").exists()
        from dockerbank.host.cgroups import spec_cgroups_path

        init_path = None
        if cfg.init:
            init_path = next((p for p in ("/usr/bin/docker-init", "/usr/bin/tini-static", "/usr/bin/tini",
                                          "/usr/bin/catatonit", "/usr/libexec/podman/catatonit")
                              if os.path.exists(p)), None)
            if init_path is None:
                raise RuntimeFailure("--init needs tini or catatonit: install Debian's tini")
        release = os.uname().release.split(".")
        try:
            kernel = (int(release[0]), int("".join(c for c in release[1] if c.isdigit()) or 0))
        except (IndexError, ValueError):
            kernel = (5, 10)
        import resource

        from dockerbank.oci.imageconfig import host_arch

        inputs = specs.SpecInputs(
            rootfs=str(rootfs), uid=uid, gid=gid, additional_gids=extra,
            hard_limits={"RLIMIT_NOFILE": resource.getrlimit(resource.RLIMIT_NOFILE)[1]},
            cgroups_path=spec_cgroups_path(container.id),
            netns=None if cfg.network_mode == "host" else {"type": "network"},
            mounts=mnt.to_oci_mounts(resolved),
            etc_files={"/etc/hostname": str(base / "hostname"), "/etc/hosts": str(base / "hosts"),
                       "/etc/resolv.conf": str(base / "resolv.conf")},
            devices=devices, has_swap_limit=has_swap, has_blkio_weight=has_blkio, goarch=host_arch(),
            kernel=kernel, init_path=init_path, host_caps=_host_caps(),
            joined_namespaces=self._namespace_paths(cfg, ipc_owner), pidns=self._pid_namespace(cfg),
            own_uts=cfg.uts_mode != "host", cgroupns=cfg.cgroupns_mode == "private",
            uid_mappings=list((cfg.userns or {}).get("uid") or []), gid_mappings=list((cfg.userns or {}).get("gid") or []),
        )
        record = cfg.to_dict()
        if ipc_owner is not None:  # the owner's /dev/shm: its shared tmpfs, or the host's
            record["shm_dir"] = ipc_owner.config.shm_dir or ("/dev/shm" if ipc_owner.config.ipc_mode == "host" else "")
        oci_spec = specs.build_spec(record, inputs)
        if cfg.network_mode == "host" and _rootless():
            _host_sys_for_rootless(oci_spec)
        return oci_spec

    def _pid_namespace(self, cfg: ContainerConfig) -> dict[str, Any] | None:
        """The OCI pid namespace of ``--pid``: a new one, None for the host's, or another container's."""
        if cfg.pid_mode == "host":
            return None
        if cfg.pid_mode.startswith("container:"):
            other = self.get(cfg.pid_mode.split(":", 1)[1])
            if other.state.status not in model.ACTIVE or not other.state.pid:
                raise Conflict(f"cannot join PID of a non running container: {other.id}")
            return {"type": "pid", "path": f"/proc/{other.state.pid}/ns/pid"}
        return {"type": "pid"}

    @cached_property
    def _seccomp_cache(self):
        from dockerbank.runtime.seccomp_cache import SeccompCache

        return SeccompCache(self.config.run_root / "seccomp", self.runtime.path)

    def _exit_command(self, cid: str) -> builtins.list[str]:
        """conmon's ``--exit-command`` (conmon adds nothing to it: the ID is ours to pass); behind
        the lock of a resident exit handler when this engine's process holds one (engine.exits)."""
        command = [sys.executable, "-m", "dockerbank", "--root", str(self.config.root), "--runroot",
                   str(self.config.run_root), "container", "cleanup", cid]
        guard = getattr(self.engine, "exit_guard", None)
        if guard is None:
            return command
        from dockerbank.runtime.conmon import guarded_exit_command

        return guarded_exit_command(command, guard)

    def start(self, ref: str, *, attached: bool = False, stdin: bool | None = None):
        """Start a container. Detached: returns when it runs. Attached: returns an ``Attachment``
        whose ``run()`` streams its stdio and returns the exit code (after the clean-up)."""
        from dockerbank.container import logconfig

        conmon = self.conmon

        container = self.get(ref)
        cid = container.id
        if container.config.pod and not container.config.is_infra:
            self._start_pod_infra(container)
        with self.lock(cid):
            container = self.reconcile(self.store.get(cid))
            status = container.state.status
            if status in model.ACTIVE:
                if attached:
                    raise Conflict(f"container {cid} is already running; use attach")
                return None
            if status in (model.REMOVING, model.DEAD):
                raise Conflict(f"container {cid} is marked for removal and cannot be started")
            cfg = container.config
            base = self.dir(cid)
            for stale in ("exit", "oom", "pid", "conmon.pid", "attach", "ctl", "winsz"):
                try:
                    os.unlink(base / stale)
                except OSError:
                    pass
            self.runtime.delete(cid, force=True) if status != model.CREATED else None
            rootfs = self._mount_rootfs(container)
            self.store.update_state(cid, lambda s: setattr(s, "mounted", True))
            try:
                net = None
                if self._networked(container):  # none/host need no network service (and no import)
                    net = self.network.up(container, base)
                if cfg.shm_dir and not cfg.ipc_mode.startswith("container:"):
                    # its own shared /dev/shm (a pod's infra, a shareable container): joiners bind it
                    self.shm_dirs.ensure_mounted(cfg.shm_dir, cfg.shm_size)
                spec = self._spec(container, rootfs)
                if net is not None:
                    self.network.join(spec, net)
                seccomp_key = self._seccomp_cache.annotate(spec) if self.runtime.name == "crun" else None
                write_private(base / "config.json", json.dumps(spec))  # its env holds passwords
                want_stdin = cfg.open_stdin if stdin is None else stdin
                spawn_args: dict[str, Any] = {"log_path": self.log_path(cid), "terminal": cfg.tty, "stdin": want_stdin,
                              "command": cfg.path, "exit_command": None if attached else self._exit_command(cid)}
                log_config = logconfig.LogConfig.from_dict(cfg.log_config)
                log_args = logconfig.conmon_log_args(log_config, str(self.log_path(cid)))
                if log_args != logconfig.conmon_log_args(logconfig.LogConfig(), str(self.log_path(cid))):
                    spawn_args["log_args"] = log_args   # a size limit, or no log at all
                keeper = None
                if logconfig.needs_keeper(log_config) and log_config.rotation.keeps_history:
                    from dockerbank.container.logrotate import Keeper

                    keeper = Keeper(self.log_path(cid), log_config.rotation)
                    keeper.start_afresh()   # conmon counts max-size from its start
                log_offset = _size(self.log_path(cid))
                try:
                    started = conmon.spawn(self.runtime, cid, base, **spawn_args)
                except RuntimeFailure as exc:
                    if not self._fall_back_to_runc(exc):
                        raise
                    started = conmon.spawn(self.runtime, cid, base, **spawn_args)
                if seccomp_key is not None:  # crun compiled the profile: later starts load its program
                    self._seccomp_cache.remember(seccomp_key, self.runtime.state_dir(cid))
            except DockerbankError as exc:
                self._failed_start(cid, exc)
                raise
            sock = None
            if attached:
                try:
                    sock = conmon.connect_attach(base)
                except DockerbankError:
                    sock = None
            if keeper is not None:
                keeper.step()   # the first file is held before the container writes a line
            try:
                self.runtime.start(cid)
            except DockerbankError as exc:
                if sock is not None:
                    sock.close()
                self._failed_start(cid, exc)
                raise
            start_time = conmon.proc_starttime(started.conmon_pid)

            def running(state: ContainerState) -> None:
                state.status = model.RUNNING
                state.pid = started.pid
                state.conmon_pid = started.conmon_pid
                state.conmon_start = start_time
                state.exit_code = 0
                state.error = ""
                state.oom_killed = False
                state.started_at = now_rfc3339()
                state.finished_at = model.ZERO_TIME
                state.user_stopped = False
                state.boot_id = _boot_id()
                state.attached = attached
                state.health = self._health_at_start(cfg, state.health)

            self.store.update_state(cid, running)
            if logconfig.needs_keeper(log_config):
                self._ship_logs(container, base, started.conmon_pid, start_time, log_offset)
        self._event(container, "start")
        if state_has_health(cfg):
            self._ensure_health_scheduler(force=True)
        if attached:
            return Attachment(self, cid, base, sock, started.conmon_pid, start_time, cfg.tty, want_stdin)
        return None

    def _start_pod_infra(self, container: Container) -> None:
        """A pod's member starts after the infra container whose namespaces it joins (podman's
        dependency order): started here when it does not run."""
        cfg = container.config
        owners = {mode[len("container:"):] for mode in (cfg.ipc_mode, cfg.uts_mode, cfg.pid_mode)
                  if mode.startswith("container:")}
        if (cfg.network or {}).get("kind") == "container" and cfg.network.get("container"):
            owners.add(cfg.network["container"])
        for ref in sorted(owners):
            try:
                owner = self.get(ref)
            except NotFound:
                continue  # the start below words the missing namespace
            if owner.config.is_infra and owner.config.pod == cfg.pod and owner.state.status not in model.ACTIVE:
                self.start(owner.id)

    @staticmethod
    def _health_at_start(cfg: ContainerConfig, previous: dict | None) -> dict | None:
        if not state_has_health(cfg):
            return None
        from dockerbank.container.health import started

        return started(previous)

    def _ensure_health_scheduler(self, force: bool = False) -> None:
        """Start (or wake) the root's health scheduler: after the start of a container with a
        healthcheck (``force``), and when a command reads a running one (at most every 5 s in a
        long-lived engine), so a killed scheduler comes back with the next command. Costs one
        flock attempt (and a signal) while the scheduler runs."""
        now = time.monotonic()
        if not force and now - getattr(self, "_health_ensured_at", -10.0) < 5.0:
            return
        self._health_ensured_at = now
        from dockerbank.container.healthscheduler import ensure

        try:
            ensure(self.config)
        except OSError:
            pass  # the next command tries again

    def _ship_logs(self, container: Container, base: Path, conmon_pid: int, conmon_start: int,
                   offset: int) -> None:
        """A remote log driver or rotated files to keep: start the log keeper process beside
        conmon (container.logship: it ships the local log's new lines and keeps max-file)."""
        from dockerbank.container import logship

        cfg = container.config
        source = logship.Source(container.id, container.name, cfg.image, cfg.image_id,
                                " ".join([cfg.path, *cfg.args]), container.created, dict(cfg.labels))
        logship.spawn(base, self.log_path(container.id), cfg.log_config, source, conmon_pid, conmon_start, offset)

    def _fall_back_to_runc(self, exc: RuntimeFailure) -> bool:
        """After crun refused the host's cgroups (a case detection missed), use runc from now on."""
        from dockerbank.runtime.detect import RuntimeChoice, remember
        from dockerbank.runtime.oci import OciRuntime

        runc = shutil.which("runc")
        if self.runtime.name != "crun" or runc is None or "cgroup" not in exc.message.lower() or exc.exit_code != 125:
            return False
        choice = RuntimeChoice("runc", runc, False, f"crun failed here: {exc.message}")
        remember(self.config.run_root, choice)
        self.runtime = OciRuntime(choice, self.config.run_root / "runtime")
        return True

    @staticmethod
    def _networked(container: Container) -> bool:
        """Whether the container's network needs the network service (everything but none/host).

        Containers recorded before networks existed have no ``network`` dict: they are none/host.
        """
        return (container.config.network or {}).get("kind") in ("bridge", "user", "container")

    def _network_down(self, container: Container, background: bool = False) -> None:
        """Release the container's addresses, ports and netns (never raises); ``background``:
        without making a foreground ``run`` wait for it (see ``Network.down``)."""
        if self._networked(container):
            self.network.down(container.id, background=background)

    def _failed_start(self, cid: str, exc: DockerbankError) -> None:
        try:
            self.runtime.delete(cid, force=True)
        except DockerbankError:
            pass
        self._unmount_rootfs(cid)
        try:
            container = self.store.get(cid)
            self._network_down(container)
            self._release_shm(container)
        except NotFound:
            pass

        def failed(state: ContainerState) -> None:
            state.mounted = False
            state.error = exc.message
            state.exit_code = exc.exit_code if exc.exit_code in (126, 127) else 128
            if state.status != model.CREATED:
                state.status = model.EXITED

        try:
            self.store.update_state(cid, failed)
        except NotFound:
            pass

    # --- after an exit ----------------------------------------------------------------------

    def cleanup(self, cid: str, restart: bool = True) -> ContainerState | None:
        """Record the exit (code, time, OOM), free the runtime state and the mount; ``--rm`` removes.

        Idempotent: run by conmon's exit command, by an attached CLI and by reconcile. With
        ``restart``, a restart policy that asks for it starts the container again (conmon's
        exit command runs this right after the exit, so ``--restart`` works without a daemon;
        after a host reboot the first CLI call that reads the container does it).
        """
        conmon = self.conmon

        with self.lock(cid):
            try:
                container = self.store.get(cid)
            except NotFound:
                return None
            state = container.state
            base = self.dir(cid)
            deferred = False
            if state.status in model.ACTIVE or state.status == model.RESTARTING:
                code = conmon.read_exit(base)
                if code is None and conmon.alive(state.conmon_pid, state.conmon_start):
                    return state
                try:
                    finished = rfc3339_of((base / "exit").stat().st_mtime)
                except OSError:
                    finished = now_rfc3339()
                oom = conmon.oom_reported(base)
                if not oom and code == 137 and container.config.memory:
                    oom = self._cgroup_oom(cid)
                # --rm: the removal right below hands the runtime state and the mount to a detached
                # child (see _teardown_detached), so neither is freed here
                deferred = container.config.auto_remove and container.config.restart_policy.get("Name", "no") == "no"
                if not deferred:
                    try:
                        self.runtime.delete(cid, force=True)
                    except DockerbankError:
                        pass
                    self._unmount_rootfs(cid)
                    self._release_shm(container)
                # in the background when nothing may need the addresses back at once: an attached
                # client's own clean-up, or an exited --rm container (removed right below)
                self._network_down(container, background=not restart or deferred)

                def exited(s: ContainerState) -> None:
                    s.status = model.EXITED
                    s.exit_code = code if code is not None else 255
                    s.finished_at = finished
                    s.oom_killed = oom
                    s.pid = 0
                    s.mounted = deferred
                    s.health = health_when_stopped(s.health)
                    if code is None:
                        s.error = "container monitor (conmon) disappeared without an exit code"

                state = self.store.update_state(cid, exited)
                if oom:
                    self._event(container, "oom")
                self._event(container, "die", exitCode=str(state.exit_code))
            elif state.mounted:
                self._unmount_rootfs(cid)
                state = self.store.update_state(cid, lambda s: setattr(s, "mounted", False))
            auto_remove = container.config.auto_remove
        if restart and should_restart(container.config.restart_policy, state):
            return self._restart_by_policy(cid, state)
        if auto_remove and state.status == model.EXITED:
            try:
                self.remove(cid, force=True, teardown_later=deferred)
            except NotFound:
                pass
        return state

    def _restart_by_policy(self, cid: str, state: ContainerState) -> ContainerState | None:
        """Start again after Docker's back-off (100 ms doubling, at most 10 s, reset after 10 s of running)."""
        from dockerbank.container.logs import parse_time

        try:
            ran = parse_time(state.finished_at) - parse_time(state.started_at)
        except ValueError:
            ran = 0.0
        count = state.restart_count
        if ran < 10 and state.boot_id == _boot_id():
            time.sleep(min(0.1 * (2 ** min(count, 7)), 10.0))
        try:
            self.start(cid)
        except DockerbankError as exc:
            message = f"restart failed: {exc.message}"
            self.store.update_state(cid, lambda s: setattr(s, "error", message))
            return self.store.get(cid).state
        return self.store.update_state(cid, lambda s: setattr(s, "restart_count", count + 1))

    def _cgroup_oom(self, cid: str) -> bool:
        try:
            from dockerbank.container.oom import oom_killed
            from dockerbank.host.cgroups import Cgroup, container_cgroups_path, detect_layout

            return oom_killed(Cgroup(detect_layout(), container_cgroups_path(cid)))
        except (DockerbankError, OSError):  # a missing cgroup tells nothing more
            return False

    # --- stop, kill, pause ------------------------------------------------------------------

    def _signal(self, container: Container, sig: int) -> None:
        state = container.state
        if state.pid <= 0:
            raise Conflict(f"Container {container.id} is not running")
        self.runtime.signal(container.id, state.pid, sig)

    def kill(self, ref: str, sig: str | int = "KILL") -> Container:
        number = parse_signal(sig)
        container = self.get(ref)
        if container.state.status not in model.ACTIVE:
            raise Conflict(f"Cannot kill container: {ref}: Container {container.id} is not running")
        self.store.update_state(container.id, lambda s: setattr(s, "user_stopped", True))
        if container.state.status == model.PAUSED and number == signals.SIGKILL:
            self._signal(container, number)
            self.runtime.resume(container.id)
        else:
            self._signal(container, number)
        self._event(container, "kill", signal=str(number))
        return container

    def stop(self, ref: str, timeout: int | None = None, exited: Callable[[], None] | None = None) -> Container:
        """STOPSIGNAL, then SIGKILL after ``timeout`` seconds (the container's own default, else 10);
        ``exited()`` is told as soon as the process has ended, before the clean-up (compose's
        ``down`` stops the next wave then)."""
        conmon = self.conmon

        container = self.get(ref)
        if container.state.status not in model.ACTIVE:
            return container
        cfg, state = container.config, container.state
        if timeout is None:
            timeout = cfg.stop_timeout if cfg.stop_timeout is not None else 10
        self.store.update_state(container.id, lambda s: setattr(s, "user_stopped", True))
        base = self.dir(container.id)
        if state.status == model.PAUSED:
            self.runtime.resume(container.id)
        if timeout != 0:
            self._signal(container, parse_signal(cfg.stop_signal or "SIGTERM"))
            code = conmon.wait_exit(base, state.conmon_pid, state.conmon_start, timeout=max(timeout, 0))
        else:
            code = None
        if code is None:
            self._signal(container, signals.SIGKILL)
            conmon.wait_exit(base, state.conmon_pid, state.conmon_start, timeout=10)
        if exited is not None:
            exited()
        self.cleanup(container.id)
        self._event(container, "stop")
        try:
            return self.store.get(container.id)
        except NotFound:
            return container

    def restart(self, ref: str, timeout: int | None = None) -> None:
        container = self.stop(ref, timeout)
        self.start(container.id)  # like docker, a manual restart does not count in RestartCount
        self._event(container, "restart")

    def pause(self, ref: str) -> None:
        container = self.get(ref)
        if container.state.status == model.PAUSED:
            raise Conflict(f"Container {container.id} is already paused")
        if container.state.status != model.RUNNING:
            raise Conflict(f"Container {container.id} is not running")
        with self.lock(container.id):
            self.runtime.pause(container.id)

            def paused(s: ContainerState) -> None:
                s.status = model.PAUSED
                s.health = health_when_stopped(s.health)  # docker: no probes while paused, unhealthy

            self.store.update_state(container.id, paused)
        self._event(container, "pause")

    def unpause(self, ref: str) -> None:
        container = self.get(ref)
        if container.state.status != model.PAUSED:
            raise Conflict(f"Container {container.id} is not paused")
        with self.lock(container.id):
            self.runtime.resume(container.id)
            self.store.update_state(container.id, lambda s: setattr(s, "status", model.RUNNING))
        self._event(container, "unpause")
        if state_has_health(container.config):
            self._ensure_health_scheduler(force=True)  # probes resume (the scheduler may have left)

    # --- exec -------------------------------------------------------------------------------

    def exec(self, ref: str, command: builtins.list[str], *, interactive: bool = False, tty: bool = False,
             detach: bool = False, env: builtins.list[str] | None = None, user: str | None = None,
             workdir: str | None = None, privileged: bool = False):
        """Run a command in a running container (through its own conmon). Detached: returns None;
        else an ``Attachment`` whose ``run()`` gives the command's exit code."""
        from dockerbank.container.users import resolve_user
        conmon = self.conmon

        container = self.get(ref)
        if container.state.status == model.PAUSED:
            raise Conflict(f"Container {container.id} is paused, unpause the container before exec")
        if container.state.status != model.RUNNING:
            raise Conflict(f"Container {container.id} is not running")
        if not command:
            raise InvalidArgument("exec requires at least 1 argument", exit_code=125)
        base = self.dir(container.id)
        process = json.loads((base / "config.json").read_text())["process"]
        process["args"] = list(command)
        process["terminal"] = tty
        merged_env = list(process.get("env", []))
        for item in env or []:
            key = item.split("=", 1)[0]
            merged_env = [e for e in merged_env if e.split("=", 1)[0] != key] + [item]
        process["env"] = merged_env
        if workdir:
            process["cwd"] = workdir
        if user:
            rootfs = base / "merged"

            def read(rel: str) -> str:
                try:
                    return (rootfs / rel).read_text(errors="replace")
                except OSError:
                    return ""

            uid, gid, extra = resolve_user(user, read("etc/passwd"), read("etc/group"))
            process["user"] = {"uid": uid, "gid": gid, **({"additionalGids": list(extra)} if extra else {})}
        if privileged:
            # the spec builder is a large module: only --privileged needs it here
            from dockerbank.runtime.spec import ALL_CAPS

            process["capabilities"] = {k: list(ALL_CAPS) for k in ("bounding", "effective", "permitted")}
        exec_id = new_id()
        work = base / "exec" / exec_id
        work.mkdir(parents=True)
        spec_path = work / "process.json"
        write_private(spec_path, json.dumps(process))
        try:
            started = conmon.spawn(self.runtime, container.id, base, log_path=work / "exec.log", terminal=tty,
                                   stdin=interactive, command=command[0], exec_spec=spec_path, exec_id=exec_id,
                                   attach_first=not detach)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        if detach:
            return None
        return Attachment(self, container.id, work, started.sock, started.conmon_pid,
                          conmon.proc_starttime(started.conmon_pid), tty, interactive, exec_session=True)

    # --- wait, remove, rename ---------------------------------------------------------------

    def wait(self, ref: str) -> int:
        """Block until the container exits; its exit code."""
        conmon = self.conmon

        container = self.get(ref)
        state = container.state
        if state.status in model.ACTIVE:
            conmon.wait_exit(self.dir(container.id), state.conmon_pid, state.conmon_start)
            state = self.cleanup(container.id) or state
            try:
                state = self.store.get(container.id).state
            except NotFound:
                pass
        return state.exit_code

    def remove(self, ref: str, *, force: bool = False, volumes: bool = False, teardown_later: bool = False) -> str:
        """``rm``: a running container only with ``force`` (killed first); ``volumes``: its anonymous volumes too.

        ``teardown_later`` (the clean-up of an exited ``--rm`` container, which left its runtime
        state and mount for this): the record goes now, the runtime state, mount and directory in
        a detached child (:meth:`_teardown_detached`)."""
        conmon = self.conmon

        container = self.store.find(ref)
        cid = container.id
        container = self.reconcile(container)
        if container.state.status in model.ACTIVE:
            if not force:
                raise Conflict(f"You cannot remove a {container.state.status} container {cid}. Stop the container "
                               "before attempting removal or force remove")
            try:
                if container.state.status == model.PAUSED:
                    self._signal(container, signals.SIGKILL)
                    self.runtime.resume(cid)
                self._signal(container, signals.SIGKILL)
                self._event(container, "kill", signal=str(int(signals.SIGKILL)))
            except DockerbankError:
                pass
            conmon.wait_exit(self.dir(cid), container.state.conmon_pid, container.state.conmon_start, timeout=10)
        with self.lock(cid):
            try:
                current = self.store.get(cid)
            except NotFound:
                return cid
            teardown_later = teardown_later and current.state.status == model.EXITED and current.state.mounted
            if teardown_later:
                pass  # the network went down at the clean-up; the rest after the rename below
            elif current.state.status not in (model.EXITED, model.CREATED) or current.state.mounted:
                if current.state.status not in (model.EXITED, model.CREATED):  # its exit recorded by nobody yet
                    code = conmon.read_exit(self.dir(cid))
                    self._event(current, "die", exitCode=str(code if code is not None else 137))
                try:
                    self.runtime.delete(cid, force=True)
                except DockerbankError:
                    pass
                self._unmount_rootfs(cid)
                self._network_down(current)  # an exited container's network went down at its clean-up
            try:
                if volumes:
                    self.engine.volumes.remove_anonymous_of(cid)
                else:
                    self.engine.volumes.detach(cid)
            except DockerbankError:
                pass
            self.shm_dirs.remove(cid)  # a shareable container's /dev/shm (nothing to do for others)
            self.store.delete(cid)
            self._event(current, "destroy")
            base = self.dir(cid)
            if base.exists():
                trash = base.with_name(f".rm-{cid}")
                try:
                    os.rename(base, trash)
                except OSError:
                    trash = base
                if not teardown_later:
                    shutil.rmtree(trash, ignore_errors=True)
        self._drop_lock_file(cid)
        if teardown_later:
            self._teardown_detached(cid, trash, bool(current.config.userns))
        elif current.config.userns:
            self.mapped_layers.release(cid)
        return cid

    def _teardown_detached(self, cid: str, trash: Path, userns: bool = False) -> None:
        """``<runtime> delete``, unmount ``trash/merged`` and remove ``trash``, in a CLI call in a
        detached child after the engine closes (``Engine.later``; a long-lived engine does it now).

        The unmount alone waits for the kernel (an RCU grace period: 20-250 ms on this host)
        and ``crun delete`` is one more process; a foreground ``run --rm`` returns its exit code
        without waiting for either, as it does for the network teardown. ``system check``
        repairs what a killed child leaves.
        """
        runtime, mounts = self.runtime, self.mounts

        def teardown() -> None:
            try:
                runtime.delete(cid, force=True)
            except DockerbankError:
                pass
            try:
                mounts.unmount(trash / "merged", lazy=True)
            except DockerbankError:
                return  # system check repairs what is left
            shutil.rmtree(trash, ignore_errors=True)  # only once nothing is mounted below it
            if userns:
                release(cid)

        release = self.mapped_layers.release
        self.engine.later(teardown)

    def update(self, ref: str, *, memory: int | None = None, memory_swap: int | None = None,
               nano_cpus: int | None = None, cpu_shares: int | None = None, pids_limit: int | None = None,
               blkio_weight: int | None = None, restart: str | None = None) -> Container:
        """``docker update``: new resource limits (applied at once to a running container's
        cgroup by the runtime) and restart policy; None leaves a setting as it is."""
        container = self.get(ref)
        cid = container.id
        policy = parse_restart(restart) if restart is not None else None
        if policy is not None and policy["Name"] != "no" and container.config.auto_remove:
            raise Conflict("Restart policy cannot be updated because AutoRemove is enabled for the container")
        if blkio_weight and not 10 <= blkio_weight <= 1000:
            raise InvalidArgument("Range of blkio weight is from 10 to 1000")
        if memory and 0 < memory < 6 * 1024 * 1024:
            raise InvalidArgument("Minimum memory limit allowed is 6MB")
        given = {"memory": memory, "memory_swap": memory_swap, "nano_cpus": nano_cpus, "cpu_shares": cpu_shares,
                 "pids_limit": pids_limit, "blkio_weight": blkio_weight}
        limits: dict[str, int] = {k: v for k, v in given.items() if v is not None}
        if _rootless():
            from types import SimpleNamespace

            _rootless_limits(SimpleNamespace(**limits))
        new_memory = limits.get("memory", container.config.memory)
        new_swap = limits.get("memory_swap", container.config.memory_swap)
        if new_swap > 0 and new_memory and new_swap < new_memory:
            raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")

        def change(cfg: ContainerConfig) -> None:
            for key, value in limits.items():
                setattr(cfg, key, value)
            if policy is not None:
                cfg.restart_policy = policy

        with self.lock(cid):
            current = self.store.get(cid)
            if limits and current.state.status in model.ACTIVE:
                self.runtime.update(cid, _resources_update(limits, new_memory, new_swap))
            self.store.update_config(cid, change)
        self._event(container, "update")
        return self.store.get(cid)

    def rename(self, ref: str, new_name: str) -> None:
        container = self.get(ref)
        name = validate_name(new_name)
        if name == container.name:
            raise InvalidArgument("Renaming a container with the same name as its current name")
        self.store.rename(container.id, name)
        self._event(container, "rename", oldName="/" + container.name)


def _resources_update(limits: dict[str, int], memory: int, swap: int) -> dict[str, Any]:
    """The OCI ``linux.resources`` for ``<runtime> update`` of the limits given (pure)."""
    res: dict[str, Any] = {}
    if "memory" in limits or "memory_swap" in limits:
        mem: dict[str, Any] = {"limit": memory if memory else -1}
        if "memory_swap" in limits or memory:
            mem["swap"] = swap if swap else (memory * 2 if memory else -1)
        res["memory"] = mem
    cpu: dict[str, Any] = {}
    if "nano_cpus" in limits:
        period = 100000
        cpu.update(period=period, quota=limits["nano_cpus"] * period // 1_000_000_000 or -1)
    if "cpu_shares" in limits:
        cpu["shares"] = limits["cpu_shares"]
    if cpu:
        res["cpu"] = cpu
    if "pids_limit" in limits:
        res["pids"] = {"limit": limits["pids_limit"] if limits["pids_limit"] > 0 else -1}
    if limits.get("blkio_weight"):
        res["blockIO"] = {"weight": limits["blkio_weight"]}
    return res


def _host_caps() -> tuple[str, ...] | None:
    """The capabilities this process may hand on (CapBnd); None if unreadable."""
    from dockerbank.runtime.spec import caps_of_mask

    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapBnd:"):
                return caps_of_mask(int(line.split()[1], 16))
    except (OSError, ValueError):
        pass
    return None


def state_has_health(cfg: ContainerConfig) -> bool:
    """Whether a container's healthcheck probes (its state then has docker's State.Health)."""
    if not cfg.healthcheck:
        return False
    from dockerbank.container.health import enabled

    return enabled(cfg.healthcheck)


def health_when_stopped(current: dict | None) -> dict | None:
    if not current:
        return current
    from dockerbank.container.health import stopped

    return stopped(current)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def should_restart(policy: dict, state: ContainerState) -> bool:
    """Docker's restart rules for a container that just exited (never after stop/kill/rm)."""
    if state.status != model.EXITED or state.user_stopped:
        return False
    name = policy.get("Name", "no")
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure" and state.exit_code != 0:
        limit = int(policy.get("MaximumRetryCount") or 0)
        return limit == 0 or state.restart_count < limit
    return False


class Attachment:
    """A started container whose stdio this CLI streams; ``run()`` returns the exit code."""

    def __init__(self, service: ContainerService, cid: str, work: Path, sock, conmon_pid: int, conmon_start: int,
                 tty: bool, stdin: bool, exec_session: bool = False):
        self.service, self.cid, self.work, self.sock = service, cid, work, sock
        self.exec_session = exec_session
        self.conmon_pid, self.conmon_start, self.tty, self.stdin = conmon_pid, conmon_start, tty, stdin

    def run(self, *, proxy_signals: bool = True, stdout=None, stderr=None) -> int | None:
        """Stream until the container's output ends, wait for its exit, clean up; the exit code
        (None when the user detached with ctrl-p ctrl-q).

        CLI only without sinks: it uses the process's fds 0/1/2, puts the terminal in raw mode and,
        with ``proxy_signals`` in the main thread only, installs signal handlers (process-wide).

        ``stdout``/``stderr``: sinks (engine.sinks) that take the output instead of this process's
        terminal; then nothing process-wide is touched (no stdin, no signal handlers), so a
        server's worker thread may call it (the build's RUN steps)."""
        from dockerbank.runtime import conmon

        if stdout is not None:
            if self.sock is not None:
                conmon.pump_to(self.sock, stdout, stderr if stderr is not None else stdout)
                self.sock.close()
            return self.finish()
        stdin_fd = 0 if self.stdin else None
        restore = None
        if self.tty and stdin_fd is not None and os.isatty(0):
            import termios
            import tty

            restore = termios.tcgetattr(0)
            tty.setraw(0)
        if self.tty and os.isatty(1):
            size = os.get_terminal_size(1)
            conmon.resize(self.work, size.lines, size.columns)
        old_handlers = {}
        import threading

        if proxy_signals and threading.current_thread() is threading.main_thread():  # handlers: process-wide
            def forward(signum, _frame):
                try:
                    state = self.service.store.get(self.cid).state
                    if state.pid > 0:
                        os.kill(state.pid, signum)
                except (DockerbankError, OSError):
                    pass

            for sig in (signals.SIGINT, signals.SIGTERM, signals.SIGHUP, signals.SIGQUIT, signals.SIGUSR1,
                        signals.SIGUSR2):
                old_handlers[sig] = signals.signal(sig, forward)
            if self.tty:
                def winch(_signum, _frame):
                    if os.isatty(1):
                        size = os.get_terminal_size(1)
                        conmon.resize(self.work, size.lines, size.columns)

                old_handlers[signals.SIGWINCH] = signals.signal(signals.SIGWINCH, winch)
        try:
            ended = True
            if self.sock is not None:
                ended = conmon.pump(self.sock, stdin_fd=stdin_fd, stdout_fd=1, stderr_fd=2,
                                    detach_keys=b"\x10\x11" if self.tty else None)
                self.sock.close()
            if not ended:
                return None
            conmon.wait_exit(self.work, self.conmon_pid, self.conmon_start, exit_command=False)
        finally:
            if restore is not None:
                import termios

                termios.tcsetattr(0, termios.TCSADRAIN, restore)
            for sig, handler in old_handlers.items():
                signals.signal(sig, handler)
        return self.finish()

    def finish(self, service: ContainerService | None = None, exited=None) -> int:
        """After the output ended: wait for the exit, clean up (an exec session's directory, a
        container's exit record), return the exit code (255 when none was written). Every
        transport ends an attachment here; ``service``: one of the caller's thread when the
        attachment outlived the engine that made it (the API); ``exited(code)`` is told the
        code before the clean-up (which may remove an ``--rm`` container)."""
        from dockerbank.runtime import conmon

        service = service or self.service
        # an attachment's conmon (exec session, attached run) has no exit command
        conmon.wait_exit(self.work, self.conmon_pid, self.conmon_start, exit_command=False)
        code = conmon.read_exit(self.work)
        if exited is not None and code is not None:
            exited(code)
        if self.exec_session:
            work = self.work  # its removal (~7 ms) need not delay the exit code
            service.engine.later(lambda: shutil.rmtree(work, ignore_errors=True))
            return code if code is not None else 255
        state = service.cleanup(self.cid, restart=False)
        if state is not None:
            return state.exit_code
        return code if code is not None else 255
