"""The pod use cases (Podman's ``abi`` ContainerEngine pod methods): one typed method per
operation, called by the CLI (``pod ...``, ``run --pod``) and by ``kube play``.

Batch calls (start, stop, restart, rm of many pods) return one :class:`PodReport` per pod in the
order asked; one failure does not stop the others. A pod's containers move together: start runs
the infra container first, then the members in parallel (engine.containers' batches); stop the
members in parallel, then the infra; rm removes members, infra and record, and refuses a pod
with running containers unless forced. The domain work is pod.service.PodService
(``engine.pods``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dockerbank.errors import Conflict, DockerbankError, NotFound

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    import builtins
    from collections.abc import Sequence
    from typing import Any

    from dockerbank.container.options import CreateOptions
    from dockerbank.container.model import Container
    from dockerbank.engine import Engine
    from dockerbank.pod.model import Pod
    from dockerbank.pod.service import PodService

#: ``pod ls`` filters (podman's names)
LIST_FILTERS = frozenset({"id", "name", "label", "status", "ctr-ids", "ctr-names", "ctr-number", "ctr-status",
                          "network", "until"})
POD_STATUSES = ("created", "running", "stopped", "paused", "exited", "dead", "degraded", "error")


@dataclass
class PodCreateOptions:
    """``pod create``: ``network_options`` as cli.netflags.network_options_from gives them
    (``ports`` are the pod's ``-p`` values)."""

    name: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    hostname: str | None = None
    share: list[str] | None = None          # None: podman's default (ipc, net, uts)
    infra: bool = True
    network: str = ""
    network_options: dict[str, Any] = field(default_factory=dict)
    create_command: list[str] = field(default_factory=list)
    shm_size: int = 0                       # --shm-size (bytes) of the pod's shared /dev/shm; 0: 64 MiB


@dataclass
class PodReport:
    """The outcome for one pod of a batch call (podman's ``entities.Pod*Report``)."""

    ref: str
    id: str = ""
    error: DockerbankError | None = None
    errors: list[DockerbankError] = field(default_factory=list)   # one per container that failed

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class PodListOptions:
    filters: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class PodListEntry:
    pod: Pod
    status: str
    containers: list[Container]


class PodEngine:
    """Pod use cases of one engine (``engine.pod_ops``)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @property
    def service(self) -> PodService:
        return self.engine.pods

    def get(self, ref: str) -> Pod:
        return self.service.get(ref)

    # --- create -------------------------------------------------------------------------------

    def create(self, opts: PodCreateOptions) -> Pod:
        """``pod create``: the pod and its infra container (created, not started)."""
        from dockerbank.pod.model import DEFAULT_SHARE, PodConfig

        config = PodConfig(hostname=opts.hostname or "", labels=dict(opts.labels),
                           share=list(DEFAULT_SHARE if opts.share is None else opts.share), infra=opts.infra,
                           network=opts.network or "", network_options=dict(opts.network_options),
                           create_command=list(opts.create_command), shm_size=opts.shm_size)
        return self.service.create(opts.name, config)

    def create_container(self, opts: CreateOptions) -> Container:
        """``create --pod REF`` / ``run --pod REF``: a container joined to the pod (the
        namespaces it shares; the ports, network and hostname are the pod's). ``new:NAME``
        (podman's): a pod made for it, given the container's network, ports and hostname; the pod
        goes again when the container cannot be created."""
        if not opts.pod.startswith("new:"):
            return self.service.create_member(opts)
        from dataclasses import replace

        net = dict(opts.network_options or {})
        pod = self.create(PodCreateOptions(name=opts.pod[len("new:"):] or None, hostname=opts.hostname,
                                           network=opts.network,
                                           network_options={k: v for k, v in net.items() if k != "expose"}))
        member = replace(opts, pod=pod.id, network="", hostname=None,
                         network_options={"expose": list(net.get("expose") or [])})
        try:
            return self.service.create_member(member)
        except BaseException:
            self.remove([pod.id], force=True)
            raise

    # --- lifecycle ----------------------------------------------------------------------------

    def _batch(self, refs: Sequence[str], act) -> builtins.list[PodReport]:
        reports = []
        for ref in refs:
            try:
                reports.append(act(ref))
            except DockerbankError as exc:
                reports.append(PodReport(ref, error=exc))
        return reports

    def start(self, refs: Sequence[str]) -> builtins.list[PodReport]:
        """Start each pod: its infra container, then its members in parallel; a pod some of whose
        containers fail to start is reported with one error per container."""
        def act(ref: str) -> PodReport:
            pod = self.service.get(ref)
            members = self.service.members(pod)
            report = PodReport(ref, pod.id)
            infra = [c.id for c in members if c.config.is_infra]
            others = [c.id for c in members if not c.config.is_infra]
            stale = [c.id for c in members if not c.config.is_infra and c.state.status in ("running", "paused")]
            if stale and any(c.config.is_infra and c.state.status not in ("running", "paused") for c in members):
                # members still running in the namespaces of an infra that stopped: a new infra makes
                # new namespaces, so they stop and start again to join them
                for item in self.engine.container_ops.stop(stale):
                    if item.error is not None:
                        report.errors.append(item.error)
            for step in (infra, others):
                for item in self.engine.container_ops.start(step):
                    if item.error is not None:
                        report.errors.append(item.error)
                if report.errors:
                    break
            if report.errors:
                report.error = DockerbankError(f"starting pod {pod.name}: {report.errors[0].message}",
                                               exit_code=125)
            else:
                self.service.event(pod, "start")
            return report

        return self._batch(refs, act)

    def stop(self, refs: Sequence[str], timeout: int | None = None) -> builtins.list[PodReport]:
        """Stop each pod: its members in parallel (their stop signal, SIGKILL after ``timeout``
        s), then its infra container."""
        def act(ref: str) -> PodReport:
            pod = self.service.get(ref)
            report = PodReport(ref, pod.id)
            self._stop_members(pod, timeout, report)
            if report.errors:
                report.error = DockerbankError(f"stopping pod {pod.name}: {report.errors[0].message}",
                                               exit_code=125)
            else:
                self.service.event(pod, "stop")
            return report

        return self._batch(refs, act)

    def _stop_members(self, pod: Pod, timeout: int | None, report: PodReport) -> None:
        members = self.service.members(pod)
        infra = [c.id for c in members if c.config.is_infra]
        others = [c.id for c in members if not c.config.is_infra]
        for step in (others, infra):
            for item in self.engine.container_ops.stop(step, timeout):
                if item.error is not None:
                    report.errors.append(item.error)

    def restart(self, refs: Sequence[str], timeout: int | None = None) -> builtins.list[PodReport]:
        """Stop, then start each pod."""
        def act(ref: str) -> PodReport:
            stopped = self.stop([ref], timeout)[0]
            if not stopped.ok:
                return stopped
            started = self.start([stopped.id])[0]
            started.ref = ref
            if started.ok:
                self.service.event(self.service.get(started.id), "restart")
            return started

        return self._batch(refs, act)

    def pause(self, refs: Sequence[str]) -> builtins.list[PodReport]:
        """Freeze every running container of each pod."""
        return self._each_running(refs, "pause", lambda ids: self.engine.container_ops.pause(ids), ("running",))

    def unpause(self, refs: Sequence[str]) -> builtins.list[PodReport]:
        """Thaw every paused container of each pod."""
        return self._each_running(refs, "unpause", lambda ids: self.engine.container_ops.unpause(ids), ("paused",))

    def _each_running(self, refs: Sequence[str], action: str, batch, states: tuple[str, ...]) -> builtins.list[PodReport]:
        def act(ref: str) -> PodReport:
            pod = self.service.get(ref)
            report = PodReport(ref, pod.id)
            chosen = [c.id for c in self.service.members(pod) if c.state.status in states]
            if not chosen:
                report.error = Conflict(f"no containers in pod {pod.id} are {states[0]}", exit_code=125)
                return report
            report.errors = [item.error for item in batch(chosen) if item.error is not None]
            if report.errors:
                report.error = report.errors[0]
            else:
                self.service.event(pod, action)
            return report

        return self._batch(refs, act)

    def kill(self, refs: Sequence[str], signal: str | int = "KILL") -> builtins.list[PodReport]:
        """Send ``signal`` to each running container of each pod."""
        from dockerbank.container.options import parse_signal

        parse_signal(signal)

        def act(ref: str) -> PodReport:
            pod = self.service.get(ref)
            report = PodReport(ref, pod.id)
            running = [c.id for c in self.service.members(pod) if c.state.status in ("running", "paused")]
            if not running:
                report.error = Conflict(f"no containers in pod {pod.id} are running", exit_code=125)
                return report
            for item in self.engine.container_ops.kill(running, signal):
                if item.error is not None:
                    report.errors.append(item.error)
            if report.errors:
                report.error = report.errors[0]
            else:
                self.service.event(pod, "kill")
            return report

        return self._batch(refs, act)

    def remove(self, refs: Sequence[str], *, force: bool = False, timeout: int | None = None,
               ignore: bool = False) -> builtins.list[PodReport]:
        """``pod rm``: the pod, its members and its infra container. A pod with running
        containers only with ``force`` (they are stopped first, SIGKILL after ``timeout`` s);
        ``ignore``: a pod that is not there is no error. Containers go before the record, so a
        failure leaves a pod that ``pod rm`` takes again."""
        def act(ref: str) -> PodReport:
            try:
                pod = self.service.get(ref)
            except NotFound:
                if ignore:
                    return PodReport(ref)
                raise
            report = PodReport(ref, pod.id)
            with self.service.lock(pod.id):
                members = self.service.members(pod)
                running = [c for c in members if c.state.status in ("running", "paused", "restarting")]
                if running and not force:
                    first = running[0]
                    report.error = Conflict(
                        f"pod {pod.id} has containers that are not ready to be removed: cannot remove container "
                        f"{first.id} as it is {first.state.status} - running or paused containers cannot be "
                        "removed without force: container state improper", exit_code=2)
                    return report
                if running:
                    self._stop_members(pod, 0 if timeout is None else timeout, report)
                    report.errors.clear()  # what did not stop is killed by the removal below
                others = [c.id for c in members if not c.config.is_infra]
                infra = [c.id for c in members if c.config.is_infra]
                for item in self.engine.container_ops.remove(others, force=True):
                    if item.error is not None and not isinstance(item.error, NotFound):
                        report.errors.append(item.error)
                if not report.errors:
                    for cid in infra:
                        try:
                            self.engine.containers.remove(cid, force=True)
                        except NotFound:
                            pass
                        except DockerbankError as exc:
                            report.errors.append(exc)
                if report.errors:
                    report.error = DockerbankError(f"removing pod {pod.name}: {report.errors[0].message}",
                                                   exit_code=125)
                    return report
                self.service.delete_record(pod)
            return report

        return self._batch(refs, act)

    def prune(self) -> builtins.list[PodReport]:
        """Remove every pod none of whose containers runs."""
        stopped = [e.pod.id for e in self.list(PodListOptions())
                   if not any(c.state.status in ("running", "paused", "restarting") for c in e.containers)]
        return self.remove(stopped)

    # --- reading ------------------------------------------------------------------------------

    def inspect(self, ref: str) -> dict[str, Any]:
        """podman's ``pod inspect`` object of one pod."""
        return self.service.inspect(self.service.get(ref))

    def exists(self, ref: str) -> bool:
        try:
            self.service.get(ref)
            return True
        except NotFound:
            return False

    def list(self, opts: PodListOptions) -> builtins.list[PodListEntry]:
        """``pod ls``: pods newest first, with their containers and status, filtered as podman does."""
        from dockerbank.engine.containers import check_filters

        check_filters(opts.filters, LIST_FILTERS)
        for value in opts.filters.get("status", []):
            if value.lower() not in POD_STATUSES:
                from dockerbank.errors import InvalidArgument

                raise InvalidArgument(f"{value} is not a valid status", exit_code=125)
        entries = []
        for pod in self.service.list():
            members = self.service.members(pod)
            entry = PodListEntry(pod, self.service.status(members), members)
            if _matches(entry, opts.filters):
                entries.append(entry)
        return entries

    def names(self) -> dict[str, str]:
        """Pod ID -> name of every pod (``ps --pod``)."""
        return self.service.store.names()

    def member_filter(self, refs: Sequence[str]) -> set[str]:
        """The IDs of the pods ``refs`` name (``ps --filter pod=``); unknown ones match nothing."""
        found = set()
        for ref in refs:
            try:
                found.add(self.service.get(ref).id)
            except DockerbankError:
                pass
        return found


def _matches(entry: PodListEntry, filters: dict[str, list[str]]) -> bool:
    """podman's ``pod ps --filter`` semantics: values of one key OR, keys AND (pure)."""
    from dockerbank.labels import match_label

    pod = entry.pod
    for key, values in filters.items():
        if not values:
            continue
        if key == "id" and not any(pod.id.startswith(v) for v in values):
            return False
        if key == "name" and not any(_regex_match(v, pod.name) for v in values):
            return False
        if key == "label" and not all(match_label(pod.config.labels, v) for v in values):
            return False
        if key == "status" and entry.status.lower() not in [v.lower() for v in values]:
            return False
        if key == "ctr-ids" and not any(c.id.startswith(v) for v in values for c in entry.containers):
            return False
        if key == "ctr-names" and not any(_regex_match(v, c.name) for v in values for c in entry.containers):
            return False
        if key == "ctr-number" and not any(v.isdigit() and int(v) == len(entry.containers) for v in values):
            return False
        if key == "ctr-status" and not any(c.state.status == v for v in values for c in entry.containers):
            return False
        if key == "network":
            infra = next((c for c in entry.containers if c.config.is_infra), None)
            nets = list(((infra.config.network or {}).get("networks") or [])) if infra is not None else []
            if not any(v in nets for v in values):
                return False
        if key == "until":
            from dockerbank.container.logs import parse_since, parse_time

            if not all((u := parse_since(v)) is None or parse_time(pod.created) <= u for v in values):
                return False
    return True


def _regex_match(pattern: str, text: str) -> bool:
    """podman matches names by regular expression (a bad one matches literally)."""
    import re

    try:
        return re.search(pattern, text) is not None
    except re.error:
        return pattern == text
