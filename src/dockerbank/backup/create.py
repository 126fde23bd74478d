"""``backup create``: decide what to save (plan), then save it part by part into a repository.

Parts of a snapshot: ``volume`` (a volume's tree as tar, with labels/options and sparse map),
``container`` (only the top layer, overlay whiteouts as ``.wh.`` entries, plus the container's
config and its image named by ID), ``dump`` (a database dump made inside its container),
``image`` (a docker-archive made by ``image.save``), ``network`` (a network's definition) and
``state`` (a consistent copy of ``state.db`` made with SQLite's backup API).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from dockerbank import __version__
from dockerbank.backup import archive, consistency
from dockerbank.backup.repository import Part, PartStats, Repository, Snapshot, now_utc
from dockerbank.errors import InvalidArgument, NotFound

COMPOSE_PROJECT = "com.docker.compose.project"
BIG_TOP_LAYER = 1 << 20   # warn when a container keeps more than this outside any volume


@dataclass
class CreateOptions:
    volumes: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)
    stacks: list[str] = field(default_factory=list)       # LABEL=VALUE, or a compose project name
    all: bool = False
    consistency: str = "pause"
    with_images: bool = False
    tags: list[str] = field(default_factory=list)


@dataclass
class Report:
    """What one ``backup create`` did."""

    snapshot: Snapshot
    items: list[tuple[str, str, PartStats]] = field(default_factory=list)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def total(self) -> PartStats:
        out = PartStats()
        for _kind, _name, st in self.items:
            for key in vars(out):
                setattr(out, key, getattr(out, key) + getattr(st, key))
        return out


class Progress:
    """Progress callbacks; the CLI passes one drawing rich bars, tests the silent default."""

    def task(self, description: str, total: int | None) -> Callable[[int], None]:
        return lambda n: None

    def done(self, description: str) -> None:
        pass


@dataclass
class Plan:
    volumes: list[str]
    containers: list                 # container.model.Container
    images: list                     # image.store.ImageRecord
    image_refs: dict[str, dict]      # image id -> {"tags", "repo_digests"} of images not saved
    networks: bool
    state: bool
    # the user-defined networks the saved containers use (all of them with ``networks``): a
    # restored compose container needs its project's network back to start
    network_names: list[str] = field(default_factory=list)


def _stack_filter(spec: str) -> tuple[str, str]:
    if "=" in spec:
        key, _, value = spec.partition("=")
        if not key:
            raise InvalidArgument(f"invalid --stack {spec!r}: use LABEL=VALUE or a compose project name")
        return key, value
    return COMPOSE_PROJECT, spec


def make_plan(engine, opts: CreateOptions) -> Plan:
    """Resolve names to the volumes, containers and images to save (reads only)."""
    if opts.consistency not in consistency.MODES:
        raise InvalidArgument(f"invalid --consistency {opts.consistency!r}: use one of {', '.join(consistency.MODES)}")
    if not (opts.volumes or opts.containers or opts.stacks or opts.all):
        raise InvalidArgument("nothing to back up: name volumes, or use --container, --stack or --all")
    from dockerbank.volume import mounts as mnt

    volumes: list[str] = []
    for name in opts.volumes:
        engine.volumes.get(name)  # NotFound with the volume store's message
        if name not in volumes:
            volumes.append(name)
    containers = []
    seen: set[str] = set()

    def add_container(container) -> None:
        if container.id in seen:
            return
        seen.add(container.id)
        containers.append(container)
        for raw in container.config.mounts:
            spec = mnt.MountSpec.from_dict(raw)
            if spec.type == mnt.VOLUME and spec.source and spec.source not in volumes:
                volumes.append(spec.source)

    for ref in opts.containers:
        add_container(engine.containers.get(ref))
    all_containers = engine.containers.list() if (opts.stacks or opts.all) else []
    for spec in opts.stacks:
        key, value = _stack_filter(spec)
        matched = [c for c in all_containers if c.config.labels.get(key) == value]
        if not matched:
            raise NotFound(f"no container has the label {key}={value}")
        for container in matched:
            add_container(container)
    if opts.all:
        for container in all_containers:
            add_container(container)
        for volume in engine.volumes.list():
            if volume.name not in volumes:
                volumes.append(volume.name)
    images = []
    image_refs: dict[str, dict] = {}
    wanted_ids: list[str] = []
    if opts.all:
        for record in engine.images.list():
            if opts.with_images or not record.repo_digests:
                wanted_ids.append(record.id)
    if opts.with_images:
        wanted_ids.extend(c.config.image_id for c in containers)
    for image_id in dict.fromkeys(wanted_ids):
        images.append(engine.images.get(image_id))
    for container in containers:
        if container.config.image_id not in {i.id for i in images}:
            try:
                record = engine.images.get(container.config.image_id)
                image_refs[record.id] = {"tags": record.tags, "repo_digests": record.repo_digests}
            except NotFound:
                image_refs[container.config.image_id] = {"tags": [], "repo_digests": []}
    used = [n for c in containers for n in (c.config.network or {}).get("networks") or []
            if n not in ("bridge", "host", "none")]
    return Plan(volumes, containers, images, image_refs, networks=opts.all, state=opts.all,
                network_names=list(dict.fromkeys(used)))


def create(engine, repo: Repository, opts: CreateOptions, progress: Progress | None = None) -> Report:
    """Save what ``opts`` names into ``repo``; the new snapshot's manifest is written last."""
    progress = progress or Progress()
    plan = make_plan(engine, opts)
    started = time.monotonic()
    when = now_utc()
    snapshot = Snapshot(Repository.new_id(when), when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), __version__,
                        socket.gethostname(), str(engine.config.root), list(opts.tags), opts.consistency, [])
    report = Report(snapshot)
    warnings = report.warnings
    local = repo.backend.local_path
    if opts.all and local is not None and local.resolve().is_relative_to(engine.config.root.resolve()):
        warnings.append(f"the repository {local} lies inside the root: a lost host loses its backups too; "
                        "use --repo on another disk or copy the repository to another server")
    repo.init()
    # dumps and image archives wait here in plain form: never inside the (maybe encrypted) repository
    engine.config.tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="backup-", dir=engine.config.tmp_dir))
    try:
        with repo.lock(exclusive=False):
            dumped = _dumps(engine, repo, plan, opts, report, progress, tmp)
            for name in plan.volumes:
                _volume(engine, repo, name, opts, report, progress, dumped)
            for container in plan.containers:
                _container(engine, repo, container, opts, report, progress, plan)
            for record in plan.images:
                _image(engine, repo, record, report, progress, tmp)
            if plan.networks or plan.network_names:
                _networks(engine, repo, report, None if plan.networks else plan.network_names)
            if plan.state:
                _state(engine, repo, report, tmp)
            report.seconds = time.monotonic() - started
            total = report.total
            snapshot.warnings = warnings
            snapshot.stats = {"size": total.size, "new_bytes": total.new_bytes, "stored_bytes": total.stored_bytes,
                              "dedup_bytes": total.dedup_bytes, "chunks": total.chunks,
                              "new_chunks": total.new_chunks, "seconds": round(report.seconds, 3)}
            repo.commit(snapshot)
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return report


def _add(report: Report, part, stats: PartStats) -> None:
    report.snapshot.parts.append(part)
    report.items.append((part.kind, part.name, stats))


def _dumps(engine, repo, plan: Plan, opts, report: Report, progress: Progress, tmp: Path) -> dict[str, str]:
    """``--consistency dump``: dump each running container that has a recipe; volume -> container name."""
    from dockerbank.container import model

    dumped: dict[str, str] = {}
    users: dict[str, list[str]] = {}
    for name in plan.volumes:
        for cid in engine.volumes.users(name):
            users.setdefault(cid, []).append(name)
    for cid, vols in users.items():
        container = engine.containers.get(cid)
        if consistency.mode_of(container.config.labels, opts.consistency) != "dump":
            continue
        recipe = consistency.recipe_for(container.config.image, container.config.env, container.config.labels)
        if recipe is None:
            continue
        if container.state.status != model.RUNNING:
            report.warnings.append(f"container {container.name} has a dump recipe but is not running: "
                                   f"its volumes are saved as raw files")
            continue
        out = tmp / f"dump-{cid}.out"
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            consistency.run_dump(engine, cid, recipe, fd, tmp / f"dump-{cid}.err")
        finally:
            os.close(fd)
        meta = {"container_id": cid, "container": container.name, "recipe": recipe.name, "dump": recipe.dump,
                "restore": recipe.restore, "ready": recipe.ready, "volumes": vols,
                "volume_meta": {v: engine.volumes.inspect(v) for v in vols}}
        with open(out, "rb") as fh:
            part, stats = repo.write_part("dump", container.name, "sql", fh, meta=meta,
                                          progress=progress.task(f"dump {container.name}", out.stat().st_size))
        _add(report, part, stats)
        for vol in vols:
            dumped[vol] = container.name
    return dumped


def _volume(engine, repo, name: str, opts, report: Report, progress: Progress, dumped: dict[str, str]) -> None:
    info = engine.volumes.inspect(name)
    src = engine.volumes.data_dir(name)
    if name in dumped:
        others = [c for c in engine.volumes.users(name)
                  if engine.containers.get(c).name != dumped[name] and engine.containers.get(c).state.running]
        if not others:
            return  # the dump stands for this volume's raw files
    users = engine.volumes.users(name)
    db = consistency.looks_like_database(src)
    if db and opts.consistency != "dump":
        report.warnings.append(f"volume {name} holds {db} raw files; use --consistency dump for a restorable "
                               "database (raw files are only crash-consistent)")
    with _quiesced_each(engine, users, opts.consistency, report.warnings, f"volume {name}"):
        signature, total, sparse = archive.scan(src)
        meta = {"volume": info, "root": archive.root_meta(src), "sparse": sparse, "tree_signature": signature}
        previous = repo.unchanged_part("volume", name, signature)
        if previous is not None:
            # nothing in the tree changed since that snapshot: its chunks stand for it, unread
            part = Part(previous.kind, previous.name, previous.format, previous.size, previous.sha256,
                        previous.chunks, meta)
            stats = PartStats(size=part.size, chunks=len(part.chunks), dedup_bytes=part.size)
        else:
            with archive.tar_stream(src) as stream:
                part, stats = repo.write_part("volume", name, "tar", stream, meta=meta,
                                              progress=progress.task(f"volume {name}", total))
    _add(report, part, stats)


@contextmanager
def _quiesced_each(engine, users: list[str], default: str, warnings: list[str], what: str):
    """Each user of a volume quiesced by its own mode (its label, else ``default``; a dump counts as
    pause here: the raw files are read frozen)."""
    with ExitStack() as stack:
        groups: dict[str, list[str]] = {}
        for cid in users:
            mode = consistency.mode_of(engine.containers.get(cid).config.labels, default)
            groups.setdefault("pause" if mode == "dump" else mode, []).append(cid)
        for mode, ids in groups.items():
            stack.enter_context(consistency.quiesced(engine, ids, mode, warnings, what))
        yield


def _container(engine, repo, container, opts, report: Report, progress: Progress, plan: Plan) -> None:
    base = engine.containers.dir(container.id)
    upper = base / "upper"
    files = {}
    for name in ("hostname", "hosts", "resolv.conf"):
        try:
            files[name] = (base / name).read_text()
        except OSError:
            pass
    image = {"id": container.config.image_id, **plan.image_refs.get(container.config.image_id, {})}
    meta = {"id": container.id, "name": container.name, "created": container.created,
            "config": container.config.to_dict(), "files": files, "image": image,
            "status": container.state.status}
    mode = consistency.mode_of(container.config.labels, opts.consistency)
    mode = mode if mode in ("pause", "stop", "none") else "pause"
    with consistency.quiesced(engine, [container.id], mode, report.warnings, "its top layer"):
        total = _tree_bytes(upper)
        part, stats = repo.write_part_from_producer(
            "container", container.name, "layer-tar", lambda out: archive.capture(upper, out, overlay_upper=True),
            meta=meta, progress=progress.task(f"container {container.name}", total))
    if total > BIG_TOP_LAYER:
        report.warnings.append(f"container {container.name} keeps {total / 1e6:.1f} MB outside any volume; "
                               "it is lost when the container is re-created")
    _add(report, part, stats)


def _image(engine, repo, record, report: Report, progress: Progress, tmp: Path) -> None:
    from dockerbank.image.save import save

    path = tmp / f"image-{record.id.split(':')[-1][:12]}.tar"
    save(engine.images, list(record.tags) or [record.id], str(path))
    meta = {"id": record.id, "tags": record.tags, "repo_digests": record.repo_digests,
            "parent": engine.images.parent_of(record.id)}  # docker's image parent (build/commit)
    with open(path, "rb") as fh:
        part, stats = repo.write_part("image", record.id, "docker-archive", fh, meta=meta,
                                      progress=progress.task(f"image {record.tags[0] if record.tags else record.id[:19]}",
                                                             path.stat().st_size))
    path.unlink()
    _add(report, part, stats)


def _networks(engine, repo, report: Report, only: list[str] | None = None) -> None:
    """Save the user-defined networks (those named in ``only`` when given)."""
    import io

    try:
        networks = [n for n in engine.networks.list() if n.name not in ("bridge", "host", "none")
                    and (only is None or n.name in only)]
    except Exception as exc:  # noqa: BLE001 - the network service may be unavailable on this host
        report.warnings.append(f"networks not saved: {exc}")
        return
    for net in networks:
        data = {"name": net.name, "driver": net.driver, "subnet": net.subnet, "gateway": net.gateway,
                "internal": net.internal, "labels": net.labels, "options": net.options}
        part, stats = repo.write_part("network", net.name, "json", io.BytesIO(json.dumps(data).encode()),
                                      meta=data)
        _add(report, part, stats)


def _state(engine, repo, report: Report, tmp: Path) -> None:
    """A consistent copy of the state database (SQLite's online backup API)."""
    copy = tmp / "state.db"
    source = sqlite3.connect(str(engine.config.db_path))
    try:
        target = sqlite3.connect(str(copy))
        try:
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()
    with open(copy, "rb") as fh:
        part, stats = repo.write_part("state", "state.db", "sqlite", fh, meta={})
    _add(report, part, stats)


def _tree_bytes(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total
