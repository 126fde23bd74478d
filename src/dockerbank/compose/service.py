"""A project run by the engine: ``up``, ``down``, ``ps``, ``start``/``stop``/``restart`` and the
rest, each a sequence of the engine's own methods (containers, networks, volumes, images).

Independent services are handled in parallel (one thread and one Engine per service, as the API
server does); a service waits until the ``depends_on`` conditions of its dependencies hold.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dockerbank.compose import plan as pl
from dockerbank.compose.model import Project, depends_on, topological_levels
from dockerbank.compose.options import create_options, extra_networks, image_of
from dockerbank.errors import DockerbankError, NotFound

Out = Callable[..., None]
RUNNING = ("running", "paused", "restarting")


@dataclass
class UpOptions:
    services: list[str] = field(default_factory=list)
    scale: dict[str, int] = field(default_factory=dict)
    force_recreate: bool = False
    no_recreate: bool = False
    no_start: bool = False
    remove_orphans: bool = False
    build: bool = False
    wait: bool = False
    timeout: int | None = None           # stop timeout of recreated/removed containers
    wait_timeout: float = 600.0          # how long a dependency condition may take


@dataclass
class RunOptions:
    service: str
    command: list[str] | None = None
    detach: bool = False
    remove: bool = False
    name: str | None = None
    env: list[str] = field(default_factory=list)
    no_deps: bool = False
    tty: bool = False
    interactive: bool = True
    entrypoint: str | None = None
    user: str | None = None
    workdir: str | None = None


def projects(engine) -> list[dict[str, Any]]:
    """The compose projects of a root, from their containers' labels (``compose ls``)."""
    found: dict[str, dict[str, Any]] = {}
    for c in engine.containers.list():
        labels = c.config.labels
        name = labels.get(pl.LABEL_PROJECT)
        if not name:
            continue
        entry = found.setdefault(name, {"Name": name, "states": {}, "ConfigFiles": labels.get(pl.LABEL_CONFIG_FILES, "")})
        entry["states"][c.state.status] = entry["states"].get(c.state.status, 0) + 1
    for entry in found.values():
        entry["Status"] = ", ".join(f"{state}({n})" for state, n in sorted(entry["states"].items()))
        entry["running"] = entry["states"].get("running", 0) > 0
    return [found[n] for n in sorted(found)]


def project_of(engine, name: str, environ: dict[str, str] | None = None) -> Project:
    """A deployed project loaded again from the files its containers' labels name (what
    ``compose -p NAME down`` without ``-f`` needs); NotFound when no container has it."""
    from dockerbank.compose.loader import LoadOptions, load
    from dockerbank.compose.model import normalize

    found = next((p for p in projects(engine) if p["Name"] == name), None)
    if found is None:
        raise NotFound(f"no such stack: {name}")
    files = [f for f in str(found["ConfigFiles"]).split(",") if f]
    if not files:
        raise NotFound(f"stack {name}: its containers name no compose file")
    return normalize(load(LoadOptions(files=files, project_name=name, cwd=os.path.dirname(files[0]),
                                      environ=dict(environ or {}))))


def carry_anonymous(specs: list, keep: dict[str, str], image_volumes: set[str]) -> list:
    """Mount specs where each anonymous volume that a predecessor had at the same target (from
    the file or from the image's VOLUME) is that volume again, not a new empty one (pure)."""
    from dataclasses import replace

    from dockerbank.volume import mounts as mnt

    out, taken = [], set()
    for spec in specs:
        if spec.anonymous and spec.target in keep:
            spec = replace(spec, source=keep[spec.target])
        out.append(spec)
        taken.add(spec.target)
    for target in sorted(image_volumes):
        if target in keep and target not in taken:
            out.append(mnt.parse_volume(f"{keep[target]}:{target}"))
    return out


class StackError(DockerbankError):
    """``up`` failed part of the way: says which services started and which did not."""


def existing_of(engine, project_name: str, oneoff: bool | None = False) -> list[pl.Existing]:
    """The containers of a project as the plan sees them (``oneoff=None``: all of them)."""
    found = []
    for c in engine.containers.list():
        labels = c.config.labels
        if labels.get(pl.LABEL_PROJECT) != project_name:
            continue
        if oneoff is not None and (labels.get(pl.LABEL_ONEOFF, "False") == "True") != oneoff:
            continue
        found.append(pl.Existing(c.id, c.name, dict(labels), c.state.status, c.config.image_id))
    return sorted(found, key=lambda c: (c.service, c.number, c.name))


class Stack:
    """One compose project over one engine."""

    def __init__(self, engine, project: Project, out: Out | None = None):
        self.engine = engine
        self.project = project
        self.out = out or (lambda *a, **k: None)
        self._lock = threading.Lock()

    def _say(self, text: str) -> None:
        with self._lock:
            self.out(text, err=True)

    def _engine(self):
        """An engine for a worker thread (the SQLite connection is not shared between threads)."""
        from dockerbank.engine import Engine

        return Engine(self.engine.config)

    # resources ----------------------------------------------------------------------------
    def ensure_networks(self) -> dict[str, str]:
        """Create the project's networks that services use; key -> engine network name."""
        names: dict[str, str] = {}
        used = {k for s in self.project.services for k in self.project.service_networks(s)}
        for key in sorted(used):
            name = self.project.network_name(key)
            definition = self.project.networks.get(key) or {}
            names[key] = name
            try:
                self.engine.networks.get(name)
                continue
            except NotFound:
                if definition.get("external"):
                    raise NotFound(f"network {name} declared as external, but could not be found") from None
            from dockerbank.network.ipam import create_arguments

            pools = create_arguments([{"Subnet": c.get("subnet"), "Gateway": c.get("gateway"),
                                       "IPRange": c.get("ip_range")}
                                      for c in (definition.get("ipam") or {}).get("config") or []],
                                     bool(definition.get("enable_ipv6")))
            labels = dict(definition.get("labels") or {})
            labels.update({pl.LABEL_PROJECT: self.project.name, pl.LABEL_NETWORK: key,
                           pl.LABEL_VERSION: pl.COMPOSE_VERSION})
            self._say(f'Creating network "{name}" with {"driver " + repr(definition["driver"]) if definition.get("driver") else "the default driver"}')
            self.engine.networks.create(name, internal=bool(definition.get("internal")), labels=labels,
                                        driver=definition.get("driver") or "bridge",
                                        options={k: str(v) for k, v in (definition.get("driver_opts") or {}).items()},
                                        **pools)
        return names

    def ensure_volumes(self) -> dict[str, str]:
        """Create the project's named volumes; key -> engine volume name."""
        names: dict[str, str] = {}
        for key, definition in self.project.volumes.items():
            name = self.project.volume_name(key)
            names[key] = name
            if definition.get("external"):
                if not self.engine.volumes.exists(name):
                    raise NotFound(f"volume {name} declared as external, but could not be found")
                continue
            if self.engine.volumes.exists(name):
                continue
            labels = dict(definition.get("labels") or {})
            labels.update({pl.LABEL_PROJECT: self.project.name, pl.LABEL_VOLUME: key,
                           pl.LABEL_VERSION: pl.COMPOSE_VERSION})
            self._say(f'Creating volume "{name}" with {definition.get("driver") or "default"} driver')
            self.engine.volumes.ensure(name, labels=labels, driver=definition.get("driver") or "local",
                                       options={k: str(v) for k, v in (definition.get("driver_opts") or {}).items()})
        return names

    def _image_id(self, engine, service: str) -> str:
        try:
            return engine.images.resolve(image_of(self.project, service)).id
        except NotFound:
            return ""

    # up -----------------------------------------------------------------------------------
    def up(self, opts: UpOptions) -> dict[str, list[str]]:
        """Converge the project; returns service -> container IDs. Raises StackError naming the
        services that started when one fails (a container that failed is removed)."""
        for name in opts.services:
            self.project.service(name)
        levels = topological_levels(self.project, opts.services or None)
        wanted = [s for level in levels for s in level]
        mine = existing_of(self.engine, self.project.name)
        orphans = pl.orphans(self.project, mine)
        if orphans and opts.remove_orphans:
            self._parallel([functools.partial(self._remove, container=c, timeout=opts.timeout) for c in orphans])
        elif orphans:
            self._say(f"WARN: Found orphan containers ({', '.join(c.name for c in orphans)}) for this project. "
                      "If you removed or renamed this service in your compose file, you can run this command "
                      "with the --remove-orphans flag to clean it up.")
        for service in wanted:
            self._ensure_image(service, opts.build)
        network_ids = self.ensure_networks()
        volume_names = self.ensure_volumes()
        done: dict[str, threading.Event] = {s: threading.Event() for s in wanted}
        results: dict[str, list[str]] = {}
        errors: dict[str, str] = {}

        def converge(service: str) -> None:
            engine = self._engine()
            try:
                for dep, condition in depends_on(self.project.services[service]).items():
                    if dep not in done:
                        continue
                    done[dep].wait()
                    if dep in errors:
                        raise DockerbankError(f"dependency {dep} failed")
                    if not opts.no_start:
                        self._wait_condition(engine, dep, condition, results.get(dep, []), opts.wait_timeout)
                results[service] = self._converge_service(engine, service, mine, opts, network_ids, volume_names)
            except DockerbankError as exc:
                errors[service] = exc.message
            except Exception as exc:  # a bug must not hang the services waiting on this one
                errors[service] = f"{type(exc).__name__}: {exc}"
            finally:
                engine.close()
                done[service].set()

        with ThreadPoolExecutor(max_workers=max(1, len(wanted))) as pool:
            for service in wanted:
                pool.submit(converge, service)
        if errors:
            started = [s for s in wanted if s in results]
            first = next(s for s in wanted if s in errors)
            raise StackError(f"service {first}: {errors[first]}; started: {', '.join(started) or 'none'}; "
                             f"not started: {', '.join(s for s in wanted if s not in results)}")
        if opts.wait:
            for service in wanted:
                svc = self.project.services[service]
                condition = "service_healthy" if svc.get("healthcheck") and not svc["healthcheck"].get("disable") \
                    else "service_started"
                self._wait_condition(self.engine, service, condition, results.get(service, []), opts.wait_timeout)
        return results

    def _ensure_image(self, service: str, build: bool) -> None:
        svc = self.project.services[service]
        image = image_of(self.project, service)
        have = True
        try:
            self.engine.images.resolve(image)
        except NotFound:
            have = False
        if svc.get("build") and (build or not have):
            self.build_service(service)
        elif not have and svc.get("pull_policy") != "never":
            self._say(f"Pulling {service} ({image})...")
            self.engine.registry.pull(image)

    def build_service(self, service: str, no_cache: bool = False) -> str:
        """Build a service's image with the engine's builder; returns the image ID."""
        from dockerbank.audit.buildcheck import license_scan
        from dockerbank.build import context as contexts
        from dockerbank.build.executor import BuildOptions, Builder
        from dockerbank.build.run import run_step_for

        spec = self.project.services[service].get("build") or {}
        image = image_of(self.project, service)
        self._say(f"Building {service}")
        options = BuildOptions(tags=[image], build_args={k: str(v) for k, v in (spec.get("args") or {}).items()
                                                         if v is not None},
                               target=spec.get("target"), labels=dict(spec.get("labels") or {}),
                               no_cache=no_cache or bool(spec.get("no_cache")),
                               license_scan=license_scan(self.engine))
        with contexts.from_directory(spec["context"], spec.get("dockerfile"), None) as context:
            return Builder(self.engine, lambda text: self._say(text.rstrip("\n")),
                           run_step=run_step_for(self.engine), quiet=True).build(context, options)

    def _converge_service(self, engine, service: str, mine: list[pl.Existing], opts: UpOptions,
                          network_ids: dict[str, str], volume_names: dict[str, str]) -> list[str]:
        digest = pl.config_hash(self.project, service)
        image_id = self._image_id(engine, service)
        containers = [c for c in mine if c.service == service]
        plan = pl.plan_service(self.project, service, containers, digest=digest, image_id=image_id,
                               scale=opts.scale.get(service), force_recreate=opts.force_recreate,
                               no_recreate=opts.no_recreate)
        ids: list[str] = []
        for action in plan.actions:
            if action.kind == "create":
                ids.append(self._create_and_start(engine, service, action.number, digest, network_ids,
                                                  volume_names, opts.no_start))
                continue
            container = action.container
            assert container is not None, "every action but create names its container"
            if action.kind == "keep":
                self._say(f"{container.name} is up-to-date")
                ids.append(container.id)
            elif action.kind == "start":
                if not opts.no_start:
                    self._say(f"Starting {container.name} ... ")
                    engine.containers.start(container.id)
                ids.append(container.id)
            elif action.kind == "remove":
                self._remove(engine, container, opts.timeout)
            elif action.kind == "recreate":
                ids.append(self._recreate(engine, container, digest, network_ids, volume_names, opts))
        return ids

    def _container_of_service(self, engine, service: str) -> str:
        for c in existing_of(engine, self.project.name):
            if c.service == service and c.status in RUNNING:
                return c.id
        raise NotFound(f"service {service} has no running container")

    def _create_and_start(self, engine, service: str, number: int, digest: str, network_ids, volume_names,
                          no_start: bool, name: str | None = None, keep: dict[str, str] | None = None) -> str:
        """Create one container and start it; a container whose start fails is removed again.
        ``keep``: target -> the anonymous volume of a predecessor that the new container mounts there."""
        opts = create_options(self.project, service, number, digest, network_ids=network_ids,
                              volume_names=volume_names,
                              container_of_service=lambda s: self._container_of_service(engine, s), name=name)
        if keep:
            opts.mounts = carry_anonymous(opts.mounts, keep, self._image_volumes(engine, opts.image))
        self._say(f"Creating {opts.name} ... ")
        container = engine.containers.create(opts)
        try:
            if not self.project.services[service].get("network_mode"):
                from dockerbank.network.runtime import connect_container

                for network, aliases in extra_networks(self.project, service, network_ids):
                    connect_container(engine, network, container.id, aliases)
            if not no_start:
                engine.containers.start(container.id)
        except BaseException:
            try:
                engine.containers.remove(container.id, force=True, volumes=True)
            except DockerbankError:
                pass
            raise
        return container.id

    def _recreate(self, engine, old: pl.Existing, digest: str, network_ids, volume_names, opts: UpOptions) -> str:
        """Stop the old container, create and start its successor under the same name, remove the
        old one; when the new one fails, the old one gets its name back (and runs again if it ran)."""
        self._say(f"Recreating {old.name} ... ")
        was_running = old.status in RUNNING
        if was_running:
            engine.containers.stop(old.id, opts.timeout)
        keep = self._anonymous_volumes(engine, old.id)
        parked = f"{old.id[:12]}_{old.name}"
        engine.containers.rename(old.id, parked)
        try:
            new_id = self._create_and_start(engine, old.service, old.number, digest, network_ids, volume_names,
                                            opts.no_start, name=old.name, keep=keep)
        except BaseException:
            engine.containers.rename(old.id, old.name)
            if was_running:
                engine.containers.start(old.id)
            raise
        engine.containers.remove(old.id, force=True, volumes=True)
        return new_id

    @staticmethod
    def _anonymous_volumes(engine, cid: str) -> dict[str, str]:
        """target -> name of each anonymous volume a container mounts (compose keeps their data
        across a recreate, as docker-compose does)."""
        from dockerbank.volume import mounts as mnt

        out: dict[str, str] = {}
        for raw in engine.containers.get(cid).config.mounts:
            spec = mnt.MountSpec.from_dict(raw)
            if spec.type == mnt.VOLUME and spec.source and not spec.from_container:
                try:
                    if engine.volumes.get(spec.source).anonymous:
                        out[spec.target] = spec.source
                except NotFound:
                    continue
        return out

    @staticmethod
    def _image_volumes(engine, image: str) -> set[str]:
        try:
            record = engine.images.resolve(image)
            return set((engine.images.image_config(record.id).get("config") or {}).get("Volumes") or {})
        except NotFound:
            return set()

    def _remove(self, engine, container: pl.Existing, timeout: int | None,
                exited: Callable[[], None] | None = None) -> None:
        self._say(f"Removing {container.name} ... ")
        if container.status in RUNNING:
            try:
                engine.containers.stop(container.id, timeout, exited=exited)
            except NotFound:
                return
        try:
            engine.containers.remove(container.id, force=True, volumes=True)
        except NotFound:
            pass

    def _wait_condition(self, engine, service: str, condition: str, ids: list[str], timeout: float) -> None:
        """Block until ``condition`` holds for every container of ``service``."""
        if condition == "service_started" or not ids:
            return
        deadline = time.monotonic() + timeout
        for cid in ids:
            while True:
                container = engine.containers.get(cid)
                state = container.state
                if condition == "service_healthy":
                    health = getattr(state, "health", None)
                    if not health:
                        raise DockerbankError(f"container {container.name} has no healthcheck configured "
                                              f"(service {service} is a service_healthy dependency)")
                    status = health.get("Status")
                    if status == "healthy":
                        break
                    if status == "unhealthy":
                        raise DockerbankError(f"container {container.name} is unhealthy")
                    if state.status not in RUNNING:
                        raise DockerbankError(f"container {container.name} exited ({state.exit_code})")
                else:  # service_completed_successfully
                    if state.status not in RUNNING and state.status != "created":
                        if state.exit_code != 0:
                            raise DockerbankError(f"service {service} didn't complete successfully: "
                                                  f"exit {state.exit_code}")
                        break
                if time.monotonic() > deadline:
                    raise DockerbankError(f"timed out waiting for {service} ({condition})")
                time.sleep(0.1)

    # one-off containers, images -------------------------------------------------------------
    def run(self, opts: RunOptions):
        """``compose run``: a one-off container of a service (its dependencies started first
        unless ``no_deps``); returns (container ID, Attachment or None when detached)."""
        import secrets

        svc = self.project.service(opts.service)
        deps = [d for d in depends_on(svc) if d in self.project.services]
        if deps and not opts.no_deps:
            self.up(UpOptions(services=deps))
        self._ensure_image(opts.service, False)
        network_ids = self.ensure_networks()
        volume_names = self.ensure_volumes()
        digest = pl.config_hash(self.project, opts.service)
        name = opts.name or f"{self.project.name}_{opts.service}_run_{secrets.token_hex(6)}"
        create = create_options(self.project, opts.service, 1, digest, network_ids=network_ids,
                                volume_names=volume_names, oneoff=True, name=name, command=opts.command,
                                container_of_service=lambda s: self._container_of_service(self.engine, s))
        create.network_options["ports"] = []  # compose run publishes no ports unless asked
        create.restart = "no"
        create.tty, create.interactive = opts.tty, opts.interactive and not opts.detach
        if opts.entrypoint is not None:
            import shlex

            create.entrypoint = shlex.split(opts.entrypoint)
        if opts.user:
            create.user = opts.user
        if opts.workdir:
            create.workdir = opts.workdir
        create.env = [*create.env, *opts.env]
        create.auto_remove = opts.remove and opts.detach
        container = self.engine.containers.create(create)
        try:
            if not self.project.services[opts.service].get("network_mode"):
                from dockerbank.network.runtime import connect_container

                for network, aliases in extra_networks(self.project, opts.service, network_ids):
                    connect_container(self.engine, network, container.id, aliases)
            if opts.detach:
                self.engine.containers.start(container.id)
                return container.id, None
            return container.id, self.engine.containers.start(container.id, attached=True, stdin=create.interactive)
        except BaseException:
            self.remove_container(container.id)
            raise

    def remove_container(self, cid: str) -> None:
        try:
            self.engine.containers.remove(cid, force=True, volumes=True)
        except NotFound:
            pass

    def pull(self, services: list[str], ignore_failures: bool = False) -> list[str]:
        """Pull each named service's image (all services with an image when none are named)."""
        return self._transfer(services, ignore_failures, "Pulling",
                              lambda svc: bool(svc.get("image")), self.engine.registry.pull)

    def push(self, services: list[str], ignore_failures: bool = False) -> list[str]:
        """Push the images of the services that build one and name it."""
        return self._transfer(services, ignore_failures, "Pushing",
                              lambda svc: bool(svc.get("build") and svc.get("image")), self.engine.registry.push)

    def _transfer(self, services: list[str], ignore_failures: bool, verb: str,
                  wanted: Callable[[dict], bool], move: Callable[[str], Any]) -> list[str]:
        failures: list[str] = []
        for name in services or list(self.project.services):
            svc = self.project.service(name)
            if not wanted(svc):
                continue
            self._say(f"{verb} {name} ({svc['image']})...")
            try:
                move(svc["image"])
            except DockerbankError as exc:
                if ignore_failures:   # said, not hidden: the user asked to go on, not to be kept unaware
                    self._say(f"{name}: {exc.message} (ignored)")
                else:
                    failures.append(f"{name}: {exc.message}")
        return failures

    # other commands ---------------------------------------------------------------------------
    def _parallel(self, jobs: list[Callable[[Any], Any]]) -> list[str]:
        """Run ``job(engine)`` for each job in parallel; the error lines of those that failed."""
        if len(jobs) == 1:
            results = [self._run_job(jobs[0])]
        elif jobs:
            with ThreadPoolExecutor(max_workers=min(len(jobs), 16)) as pool:
                results = list(pool.map(self._run_job, jobs))
        else:
            results = []
        return [r for r in results if r is not None]

    def _run_job(self, job: Callable[[Any], Any]) -> str | None:
        """``job(engine)`` with an engine of this thread's own; its error line, None when it worked."""
        engine = self._engine()
        try:
            job(engine)
        except DockerbankError as exc:
            return exc.message
        finally:
            engine.close()
        return None

    def _selected(self, services: list[str], oneoff: bool | None = False) -> list[pl.Existing]:
        for name in services:
            self.project.service(name)
        found = existing_of(self.engine, self.project.name, oneoff)
        return [c for c in found if not services or c.service in services]

    def _reverse_waves(self, containers: list[pl.Existing]) -> list[list[pl.Existing]]:
        """Containers grouped so that dependents come before what they depend on."""
        order = {s: i for i, level in enumerate(topological_levels(self.project)) for s in level}
        waves: dict[int, list[pl.Existing]] = {}
        for c in containers:
            waves.setdefault(-order.get(c.service, len(order)), []).append(c)
        return [waves[k] for k in sorted(waves)]

    def down(self, *, volumes: bool = False, rmi: str | None = None, remove_orphans: bool = False,
             timeout: int | None = None) -> list[str]:
        """Stop and remove the project's containers and networks (``volumes``: its named volumes too)."""
        containers = existing_of(self.engine, self.project.name, None)
        if not remove_orphans:
            orphans = [c for c in containers if c.service not in self.project.services]
            containers = [c for c in containers if c.service in self.project.services]
            if orphans:
                self._say(f"WARN: Found orphan containers ({', '.join(c.name for c in orphans)}) for this project.")
        failures = self._remove_in_waves(containers, timeout)
        networks = [n.name for n in self.engine.networks.list() if n.labels.get(pl.LABEL_PROJECT) == self.project.name]
        failures += self._parallel([functools.partial(self._remove_network, name=n) for n in networks])
        if volumes:
            for key, definition in self.project.volumes.items():
                if definition.get("external"):
                    continue
                name = self.project.volume_name(key)
                if self.engine.volumes.exists(name):
                    self._say(f"Removing volume {name}")
                    try:
                        self.engine.volumes.remove(name)
                    except DockerbankError as exc:
                        failures.append(exc.message)
        if rmi:
            for service, svc in self.project.services.items():
                if rmi == "all" or (rmi == "local" and not svc.get("image")):
                    image = image_of(self.project, service)
                    try:
                        self.engine.images.resolve(image)
                    except NotFound:
                        continue
                    self._say(f"Removing image {image}")
                    try:
                        from dockerbank.image.remove import remove_image

                        remove_image(self.engine.images, image)
                    except DockerbankError as exc:
                        failures.append(exc.message)
        return failures

    def _remove_in_waves(self, containers: list[pl.Existing], timeout: int | None) -> list[str]:
        """Stop and remove ``containers`` dependents first, as compose does: a wave is stopped
        together, and the next one is signalled as soon as the wave's processes have ended; each
        container's clean-up (its network teardown) and removal go on meanwhile."""
        ended = {c.id: threading.Event() for c in containers}

        def job(container: pl.Existing) -> Callable[[Any], None]:
            def run(engine) -> None:
                try:
                    self._remove(engine, container, timeout, exited=ended[container.id].set)
                finally:
                    ended[container.id].set()
            return run

        failures: list[str] = []
        if not containers:
            return failures
        with ThreadPoolExecutor(max_workers=min(len(containers), 16)) as pool:
            futures = []
            for wave in self._reverse_waves(containers):
                futures += [pool.submit(self._run_job, job(c)) for c in wave]
                for c in wave:
                    ended[c.id].wait()
            failures += [error for error in (f.result() for f in futures) if error is not None]
        return failures

    def _remove_network(self, engine, name: str) -> None:
        self._say(f"Removing network {name}")
        engine.networks.remove(name)

    def _stop_one(self, engine, container: pl.Existing, timeout: int | None) -> None:
        if container.status in RUNNING:
            self._say(f"Stopping {container.name} ... ")
            engine.containers.stop(container.id, timeout)

    def stop(self, services: list[str], timeout: int | None = None) -> list[str]:
        failures: list[str] = []
        for wave in self._reverse_waves(self._selected(services)):
            failures += self._parallel([functools.partial(self._stop_one, container=c, timeout=timeout) for c in wave])
        return failures

    def start(self, services: list[str]) -> list[str]:
        """Start the stopped containers of the services, dependencies first."""
        selected = self._selected(services)
        failures: list[str] = []
        for wave in reversed(self._reverse_waves(selected)):
            failures += self._parallel([functools.partial(self._start_one, container=c) for c in wave
                                        if c.status not in RUNNING])
        return failures

    def _start_one(self, engine, container: pl.Existing) -> None:
        self._say(f"Starting {container.name} ... ")
        engine.containers.start(container.id)

    def restart(self, services: list[str], timeout: int | None = None) -> list[str]:
        failures = self.stop(services, timeout)
        selected = self._selected(services)
        for wave in reversed(self._reverse_waves(selected)):
            failures += self._parallel([functools.partial(self._start_one, container=c) for c in wave])
        return failures

    def containers(self, services: list[str], all_: bool = False, oneoff: bool | None = False) -> list:
        """The engine's containers of the services (running ones unless ``all_``)."""
        ids = {c.id for c in self._selected(services, oneoff)}
        found = [c for c in self.engine.containers.list() if c.id in ids]
        if not all_:
            found = [c for c in found if c.state.status in RUNNING]
        return sorted(found, key=lambda c: c.name)
