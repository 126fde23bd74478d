"""The side effects of ``kube``: reading the image store and the stack, writing the files of
ConfigMaps and Secrets, and running a play's project with compose's ``Stack``."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from typing import Any

from dockerbank.compose.model import Project
from dockerbank.errors import Conflict, DockerbankError, NotFound
from dockerbank.kube import generate as gen
from dockerbank.kube import play as pl

Out = Callable[..., None]


def image_facts(engine) -> Callable[[str], dict[str, Any] | None]:
    """An image's config from the store (None when the image is not here)."""
    cache: dict[str, dict[str, Any] | None] = {}

    def facts(image: str) -> dict[str, Any] | None:
        if image not in cache:
            try:
                cache[image] = engine.images.image_config(engine.images.resolve(image).id)
            except DockerbankError:
                cache[image] = None
        return cache[image]

    return facts


def stack_containers(engine, project: str) -> list:
    from dockerbank.compose.plan import LABEL_ONEOFF, LABEL_PROJECT

    return [c for c in engine.containers.list() if c.config.labels.get(LABEL_PROJECT) == project
            and c.config.labels.get(LABEL_ONEOFF, "False") != "True"]


def project_of_stack(engine, stack: str, environ: dict[str, str]) -> Project:
    """The project of ``--stack``: a compose file path, else a stack's name, read from the
    compose files its containers name (or from the containers when those files are gone)."""
    from dockerbank.compose.loader import LoadOptions, load
    from dockerbank.compose.model import normalize
    from dockerbank.compose.plan import LABEL_CONFIG_FILES, LABEL_WORKING_DIR

    if os.path.isfile(stack):
        return normalize(load(LoadOptions(files=[stack], cwd=os.getcwd(), environ=environ)))
    containers = stack_containers(engine, stack)
    if not containers:
        raise NotFound(f"no stack {stack}: no container carries the label com.docker.compose.project={stack}")
    labels = containers[0].config.labels
    files = [f for f in (labels.get(LABEL_CONFIG_FILES) or "").split(",") if f]
    if files and all(os.path.isfile(f) for f in files):
        try:
            return normalize(load(LoadOptions(files=files, project_name=stack, cwd=labels.get(LABEL_WORKING_DIR) or "/",
                                              project_directory=labels.get(LABEL_WORKING_DIR), environ=environ)))
        except DockerbankError:
            pass  # no compose file (a stack kube play made from manifests) or one changed since: the containers say
    # the members of a pod (a stack kube play made) as that pod, the other containers as they are
    pod_ids = {c.config.pod for c in containers if getattr(c.config, "pod", "")}
    names = [c.id for c in containers if not getattr(c.config, "pod", "")] + sorted(pod_ids)
    return project_of_names(engine, names, stack)


def project_of_names(engine, names: list[str], project_name: str = "") -> Project:
    """``kube generate NAME...``: containers, and pods (their members, as one Pod each, with the
    ports the pod publishes) when the engine has pods."""
    from dockerbank.compose.model import normalize_port

    containers, pods, pod_ports = [], {}, {}
    for name in names:
        pod = None
        if has_pods(engine):
            try:
                pod = engine.pod_ops.get(name)
            except NotFound:
                pod = None
        if pod is None:
            containers.append(engine.containers.get(name))
            continue
        members = engine.pods.members(pod)
        for member in members:
            if member.config.is_infra:
                pod_ports[pod.name] = [p for raw in (member.config.network or {}).get("ports") or []
                                       for p in normalize_port(raw, "pod", "ports")]
                continue
            containers.append(member)
            pods[member.id] = pod.name
    project = project_of_containers(engine, containers, project_name, pods)
    for pod_name, ports in pod_ports.items():
        first = next((s for s in project.services.values() if s.get("x-dockerbank-pod") == pod_name), None)
        if first is not None and ports:
            first["ports"] = [*(first.get("ports") or []), *ports]
    return project


def project_of_containers(engine, containers: list, name: str, pods: dict[str, str] | None = None) -> Project:
    """Containers as one project (their images' own environment left out)."""
    from dockerbank.kube.containers import project_of

    facts = image_facts(engine)
    image_env = {c.config.image: list(((facts(c.config.image) or {}).get("config") or {}).get("Env") or [])
                 for c in containers}
    return project_of(containers, name, image_env, pods)


def generate(engine, project: Project, opts: gen.GenerateOptions) -> gen.Generated:
    """The manifests of ``project`` with the store's image facts and the root's private registries."""
    from dockerbank.registry.registries import RegistriesConfig

    from dataclasses import replace

    registries = RegistriesConfig.load(engine.config.root)
    opts = replace(opts, played_files=os.path.join(str(engine.config.root), "kube"))
    return gen.generate(project, opts, image_facts=image_facts(engine), is_private=registries.is_private)


def files_dir(engine, project: str) -> str:
    """Where a play keeps the files of its ConfigMaps and Secrets (inside the closed root)."""
    return os.path.join(str(engine.config.root), "kube", project)


def has_pods(engine) -> bool:
    """Whether this engine runs pods (``engine.pod_ops``; a remote engine may not): without them
    a Pod's containers share the first one's network namespace only."""
    return hasattr(type(engine), "pod_ops")


def read_plan(engine, path: str, ignore_unsupported: bool) -> pl.PlayPlan:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise DockerbankError(f"cannot read {path}: {exc.strerror}", exit_code=125) from None
    except UnicodeDecodeError:
        raise DockerbankError(f"{path}: not a UTF-8 text file", exit_code=125) from None
    docs = pl.load_documents(text, path)
    name = pl.project_name(docs, path)
    return pl.plan(docs, path, files_dir(engine, name), ignore_unsupported=ignore_unsupported,
                   real_pods=has_pods(engine))


def play(engine, path: str, *, ignore_unsupported: bool = False, out: Out | None = None) -> pl.PlayPlan:
    """``kube play``: check the whole file first (nothing is created when it cannot run), then
    write the ConfigMap/Secret files and bring the project up with compose's Stack."""
    from dockerbank.compose.service import Stack, UpOptions, existing_of

    say = out or (lambda *a, **k: None)
    plan = read_plan(engine, path, ignore_unsupported)
    for line in plan.warnings:
        say(f"WARN: {line}", err=True)
    existing = existing_of(engine, plan.project.name, None)
    if existing:
        raise Conflict(f"stack {plan.project.name} already has containers ({', '.join(c.name for c in existing)}): "
                       f"run kube down {path} (or compose down) first", exit_code=125)
    for pod in plan.pods:
        try:
            engine.pod_ops.get(pod.name)
        except NotFound:
            continue
        raise Conflict(f"pod {pod.name} already exists: run kube down {path} (or pod rm) first", exit_code=125)
    directory = files_dir(engine, plan.project.name)
    _write_files(directory, plan.files)
    created: list[str] = []
    try:
        if plan.pods:
            created = _play_pods(engine, plan, say)
        Stack(engine, _without_pods(plan), out=_not_orphans(say) if plan.pods else say).up(UpOptions())
    except BaseException:
        if created:
            engine.pod_ops.remove(created, force=True, timeout=0, ignore=True)
        if not existing_of(engine, plan.project.name, None):
            shutil.rmtree(directory, ignore_errors=True)
        raise
    return plan


def _not_orphans(say: Out) -> Out:
    """``say`` without compose's orphan warning: the pods' containers belong to the stack (its
    label: ``compose ps`` and ``backup create --stack`` see them) but are no service of compose's."""
    def out(text: str, *args, **kwargs) -> None:
        if not text.startswith("WARN: Found orphan containers"):
            say(text, *args, **kwargs)

    return out


def _pod_waves(plan: pl.PlayPlan) -> list[list[pl.PodPlan]]:
    """The pods in waves: each wave's pods depend (``dockerbank.org/depends-on``) only on pods of
    earlier waves; a cycle is broken in file order."""
    owner = {s: pod.name for pod in plan.pods for s in pod.services}
    needs = {pod.name: {owner[d] for s in pod.services for d in plan.project.services[s].get("depends_on") or {}
                        if d in owner and owner[d] != pod.name} for pod in plan.pods}
    waves: list[list[pl.PodPlan]] = []
    done: set[str] = set()
    while len(done) < len(plan.pods):
        wave = [p for p in plan.pods if p.name not in done and needs[p.name] <= done] \
            or [p for p in plan.pods if p.name not in done][:1]
        waves.append(wave)
        done.update(p.name for p in wave)
    return waves


def _pod_order(plan: pl.PlayPlan) -> list[pl.PodPlan]:
    """The pods, each after the pods it depends on."""
    return [pod for wave in _pod_waves(plan) for pod in wave]


def _in_parallel(engine, items: list, work: Callable[[Any, Any], Any]) -> list:
    """``work(engine, item)`` for each item, in threads with an engine each (SQLite connections
    are not shared between threads), as compose runs independent services; raises the first error
    after all have ended."""
    from concurrent.futures import ThreadPoolExecutor

    def one(item):
        own = engine.sibling()
        try:
            return work(own, item)
        finally:
            own.close(defer_to=engine)

    if len(items) <= 1:
        return [work(engine, item) for item in items]
    with ThreadPoolExecutor(max_workers=min(len(items), 8)) as pool:
        futures = [pool.submit(one, item) for item in items]
    errors = [e for e in (f.exception() for f in futures) if e is not None]
    if errors:
        raise errors[0]
    return [f.result() for f in futures]


def _without_pods(plan: pl.PlayPlan) -> Project:
    """The project compose's Stack runs: all but the services of real pods (dependencies on
    those hold already: pods start first)."""
    from dataclasses import replace

    in_pods = {s for pod in plan.pods for s in pod.services}
    services = {}
    for name, svc in plan.project.services.items():
        if name in in_pods:
            continue
        svc = dict(svc)
        if svc.get("depends_on"):
            svc["depends_on"] = {k: v for k, v in svc["depends_on"].items() if k not in in_pods}
        services[name] = svc
    return replace(plan.project, services=services)


def _play_pods(engine, plan: pl.PlayPlan, say: Out) -> list[str]:
    """Create and start each Pod of the plan as a real pod (the engine's pod methods): the pod
    with the project's network, its ports and DNS names, then its containers from compose's own
    options. Returns the IDs of the pods made (the caller removes them when a later step fails)."""
    from dockerbank.compose import plan as cpl
    from dockerbank.compose.model import port_flag
    from dockerbank.compose.options import create_options
    from dockerbank.compose.service import Stack
    from dockerbank.engine.pods import PodCreateOptions

    project = plan.project
    full = Stack(engine, project, out=say)
    network_ids, volume_names = full.ensure_networks(), full.ensure_volumes()
    created: list[str] = []
    lock = threading.Lock()

    def play_one(eng, pod: pl.PodPlan) -> None:
        first = project.services[pod.services[0]]
        key = next(iter(project.service_networks(pod.services[0])), "default")
        aliases = list(dict.fromkeys([pod.name, *(((first.get("networks") or {}).get(key) or {}).get("aliases") or [])]))
        expose = [str(e) for name in pod.services for e in project.services[name].get("expose") or []]
        say(f"Creating pod {pod.name} ... ", err=True)
        made = eng.pod_ops.create(PodCreateOptions(
            name=pod.name, hostname=pod.hostname, labels={**pod.labels, cpl.LABEL_PROJECT: project.name},
            network=network_ids[key],
            network_options={"ports": [port_flag(p) for p in first.get("ports") or []], "aliases": aliases,
                             "expose": expose}))
        with lock:
            created.append(made.id)
        for service, name in zip(pod.services, pod.container_names):
            opts = create_options(project, service, 1, cpl.config_hash(project, service), network_ids=network_ids,
                                  volume_names=volume_names, name=name)
            opts.pod, opts.network, opts.network_options, opts.hostname = made.id, "", {}, None
            eng.pod_ops.create_container(opts)
        report = eng.pod_ops.start([made.id])[0]
        if report.error is not None:
            raise report.error

    try:
        for wave in _pod_waves(plan):  # pods a wave depends on run before it starts
            _in_parallel(engine, wave, play_one)
    except BaseException:
        if created:
            _in_parallel(engine, created, lambda eng, pod_id: eng.pod_ops.remove([pod_id], force=True, timeout=0,
                                                                                 ignore=True))
        raise
    return created


def down(engine, path: str, *, volumes: bool = False, out: Out | None = None) -> list[str]:
    """``kube down``: remove the containers and networks ``play`` made, the pod-own volumes and
    the ConfigMap/Secret files; the claims' volumes only with ``volumes`` (user data stays)."""
    from dockerbank.compose.service import Stack

    say = out or (lambda *a, **k: None)
    plan = read_plan(engine, path, ignore_unsupported=True)
    failures: list[str] = []
    if plan.pods:
        reports = _in_parallel(engine, [p.name for p in plan.pods],
                               lambda eng, name: eng.pod_ops.remove([name], force=True, ignore=True)[0])
        for report in reports:
            if report.error is not None:
                failures.append(report.error.message)
            elif report.id:
                say(f"Removing pod {report.ref} ... ", err=True)
    stack = Stack(engine, plan.project, out=say)
    failures += stack.down(volumes=volumes, remove_orphans=True)
    for name in plan.pod_volumes:
        if name in plan.project.volumes and engine.volumes.exists(name):
            try:
                engine.volumes.remove(name)
            except DockerbankError as exc:
                failures.append(exc.message)
    shutil.rmtree(files_dir(engine, plan.project.name), ignore_errors=True)
    return failures


def _write_files(directory: str, files: dict[str, bytes]) -> None:
    """The files of ConfigMaps and Secrets, each whole (temporary name, then rename)."""
    shutil.rmtree(directory, ignore_errors=True)
    for path, data in files.items():
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        tmp = f"{path}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # readable by a container's non-root user, as Kubernetes mounts them
        os.replace(tmp, path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
