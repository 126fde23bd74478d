"""Pods of one Dockerbank root (``engine.pods``): create one with its infra container, join a
container to it, read it (members, status, podman's inspect object), remove its record.

The lifecycle of a pod's containers (start infra first then the members, stop the members then
the infra, remove them) is the engine's use case (engine.pods.PodEngine), which runs the
container batches in parallel; this service holds what is the pod's own.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property

from dockerbank.errors import Conflict, DockerbankError, InvalidArgument
from dockerbank.pod.model import (
    Pod,
    PodConfig,
    check_create,
    member_conflicts,
    member_modes,
    pod_status,
    validate_name,
)
from dockerbank.pod.store import PodStore, name_conflict

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    import builtins
    from collections.abc import Callable
    from contextlib import AbstractContextManager
    from typing import Any

    from dockerbank.container.lifecycle import ContainerService
    from dockerbank.container.options import CreateOptions
    from dockerbank.container.model import Container


class PodService:
    """``infra_image()`` gives the reference of the infra's image (the real one builds the local
    pause image on first use; unit tests hand in one they have)."""

    def __init__(self, engine, *, infra_image: Callable[[], str] | None = None):
        self.engine = engine
        self.config = engine.config
        self.store = PodStore(engine.db)
        self._infra_image = infra_image

    def infra_image(self) -> str:
        """The reference of the infra containers' image (made on first use)."""
        if self._infra_image is not None:
            return self._infra_image()
        from dockerbank.pod.infra import ensure_pause_image

        return ensure_pause_image(self.engine.images)

    @cached_property
    def containers(self) -> ContainerService:
        return self.engine.containers

    def lock(self, pod_id: str) -> AbstractContextManager[None]:
        """The pod's lock (a flock in the run root, as the containers' locks): create of a member
        and rm of the pod exclude each other, so no member joins a pod being removed."""
        return self.containers.lock(f"pod-{pod_id}")

    def event(self, pod: Pod, action: str) -> None:
        """Record a pod event (podman's: Type pod, the pod's name as attribute)."""
        from dockerbank.events.log import emit

        emit(self.config, "pod", action, pod.id, {"name": pod.name})

    # --- reading ------------------------------------------------------------------------------

    def get(self, ref: str) -> Pod:
        """A pod by ID, name or unique ID prefix (podman's message and 125 when none matches)."""
        return self.store.find(ref)

    def list(self) -> list[Pod]:
        return self.store.list()

    def members(self, pod: Pod) -> builtins.list[Container]:
        """The pod's containers, reconciled, the infra container first."""
        found = []
        for cid in self.store.member_ids(pod.id):
            try:
                found.append(self.containers.get(cid))
            except DockerbankError:
                continue  # removed meanwhile
        return sorted(found, key=lambda c: not c.config.is_infra)

    @staticmethod
    def status(members: builtins.list[Container]) -> str:
        return pod_status(c.state.status for c in members)

    # --- create -------------------------------------------------------------------------------

    def create(self, name: str | None, config: PodConfig) -> Pod:
        """A new pod and (unless ``config.infra`` is off) its infra container, created, not
        started. Checked before anything exists; the infra goes again when the record fails.

        A drawn name (none given) that a concurrent create took between the draw and the
        record is drawn again, as containers' names are (ContainerStore.insert): the infra is
        made again too, since its hostname may be the pod's name."""
        from dockerbank.container.lifecycle import now_rfc3339
        from dockerbank.container.names import new_id, random_name

        check_create(config)
        drawn = not name
        if name:
            name = validate_name(name)
            if self.store.name_taken(name):
                raise name_conflict(name)
        else:
            name = random_name(self.store.name_taken)
        pod_id = new_id()
        for attempt in range(5):
            infra_id = self._create_infra(pod_id, name, config) if config.infra else ""
            pod = Pod(pod_id, name, now_rfc3339(), infra_id, config)
            try:
                self.store.insert(pod)
                break
            except BaseException as exc:
                if infra_id:
                    self.containers.remove(infra_id, force=True)
                if not (drawn and isinstance(exc, Conflict)) or attempt == 4:
                    raise
                name = random_name(self.store.name_taken)
        self.event(pod, "create")
        return pod

    def _create_infra(self, pod_id: str, name: str, config: PodConfig) -> str:
        """Create the pod's infra container (holder of the namespaces it shares); its ID."""
        from dockerbank.container.options import CreateOptions

        hostname = config.hostname or name  # podman: the pod's name (inspect shows what was given)
        shares_net = "net" in config.share
        shares_ipc = "ipc" in config.share  # then /dev/shm too: the pod's tmpfs (podman's infra ShmDir)
        infra = self.containers.create(CreateOptions(
            image=self.infra_image(), name=f"{pod_id[:12]}-infra",
            hostname=hostname if "uts" in config.share else None,
            network=config.network if shares_net else "none",
            network_options=dict(config.network_options) if shares_net else {},
            pod=pod_id, infra=True, shm_size=config.shm_size,
            shm_dir=str(self.shm_dirs.path(pod_id)) if shares_ipc else ""))
        return infra.id

    def join_options(self, opts: CreateOptions) -> tuple[Pod, CreateOptions]:
        """``run/create --pod REF``: the pod and the options of a member of it (the namespaces
        the pod shares joined through its infra); podman's refusal of options the pod owns."""
        pod = self.get(opts.pod)
        share = pod.config.share if pod.infra_id else []
        why = member_conflicts(share, network=opts.network, network_options=opts.network_options or {},
                               hostname=opts.hostname, ipc=opts.ipc_mode, uts=opts.uts_mode, pid=opts.pid_mode)
        if why:
            raise InvalidArgument(why, exit_code=125)
        changes: dict[str, Any] = {"pod": pod.id}
        if pod.infra_id:
            modes = member_modes(share, pod.infra_id)
            if modes["network"]:
                changes.update(network=modes["network"], network_options={
                    k: v for k, v in (opts.network_options or {}).items() if k == "expose"})
            for kind in ("ipc", "uts", "pid"):
                if modes[kind]:
                    changes[f"{kind}_mode"] = modes[kind]
            if modes["ipc"]:  # the infra's /dev/shm, whatever --shm-size says (podman ignores it too)
                changes["shm_dir"] = self.containers.store.get(pod.infra_id).config.shm_dir
        return pod, replace(opts, **changes)

    def create_member(self, opts: CreateOptions) -> Container:
        """Create a container in the pod ``opts.pod`` names (under the pod's lock)."""
        pod, member = self.join_options(opts)
        with self.lock(pod.id):
            self.get(pod.id)  # still there: a ``pod rm`` may have run while this waited
            return self.containers.create(member)

    # --- remove -------------------------------------------------------------------------------

    def delete_record(self, pod: Pod) -> None:
        """Forget the pod once its containers are gone (its /dev/shm unmounted first, so a
        failure leaves a pod that ``pod rm`` takes again); emits ``remove``."""
        self.shm_dirs.remove(pod.id)
        self.store.delete(pod.id)
        self.containers._drop_lock_file(f"pod-{pod.id}")
        self.event(pod, "remove")

    @cached_property
    def shm_dirs(self):
        """The pods' shared /dev/shm (container.shmdirs, as a shareable container's)."""
        from dockerbank.container.shmdirs import ShmDirs

        return ShmDirs(self.config.run_root / "pods", self.containers.mounts, "pod")

    def check(self, repair: bool = False) -> builtins.list[str]:
        """``system check``: the /dev/shm of pods that are gone (a ``pod rm`` killed between the
        containers and the record's end), unmounted and removed with ``repair``."""
        return self.shm_dirs.check(self.store.names, repair)

    # --- views --------------------------------------------------------------------------------

    def inspect(self, pod: Pod) -> dict[str, Any]:
        """podman's ``pod inspect`` object of one pod."""
        members = self.members(pod)
        cfg = pod.config
        infra = next((c for c in members if c.config.is_infra), None)
        bindings: dict[str, Any] = {}
        networks: list[str] = []
        if infra is not None:
            from dockerbank.network.runtime import inspect_fields

            host, _settings = inspect_fields(self.engine, infra)
            bindings = host.get("PortBindings") or {}
            networks = list((infra.config.network or {}).get("networks") or [])
        opts = cfg.network_options or {}
        return {
            "Id": pod.id,
            "Name": pod.name,
            "Created": pod.created,
            "CreateCommand": list(cfg.create_command),
            "ExitPolicy": "continue",
            "State": self.status(members),
            "Hostname": cfg.hostname,
            "Labels": dict(cfg.labels),
            "CreateCgroup": False,
            "CreateInfra": bool(pod.infra_id),
            "InfraContainerID": pod.infra_id,
            "InfraConfig": {
                "PortBindings": bindings,
                "HostNetwork": cfg.network == "host",
                "StaticIP": opts.get("ip") or "",
                "StaticMAC": "",
                "NoManageResolvConf": False,
                "DNSServer": list(opts.get("dns") or []) or None,
                "DNSSearch": list(opts.get("dns_search") or []) or None,
                "DNSOption": list(opts.get("dns_options") or []) or None,
                "NoManageHosts": False,
                "HostAdd": list(opts.get("add_hosts") or []) or None,
                "Networks": networks,
                "NetworkOptions": None,
                "pid_ns": "private", "userns": "host", "uts_ns": "private",
            } if pod.infra_id else None,
            "SharedNamespaces": list(cfg.share),
            "NumContainers": len(members),
            "Containers": [{"Id": c.id, "Name": c.name, "State": c.state.status} for c in members],
        }
