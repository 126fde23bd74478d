"""``restore``: put a snapshot (or parts of it) back into a root — the same one, or a fresh
root on another machine (``--root``).

Order: images, networks, volumes, containers, then dumps (each replayed into its restored,
started database container). A volume that exists and is not empty is refused unless
``force`` (then it is emptied first, so it equals the backup). A container is recreated with
its ID (unless something on this host holds it), name, config and top layer, in state
``created``; its image must be in the root, in the snapshot (``--with-images``), or be pulled
first. Images keep their parents (``build``/``commit``) when both are restored.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from dockerbank.backup import archive, consistency
from dockerbank.backup.create import Progress
from dockerbank.backup.repository import Part, Repository, Snapshot
from dockerbank.errors import Conflict, DockerbankError, InvalidArgument, NotFound


@dataclass
class RestoreOptions:
    volumes: list[str] = field(default_factory=list)       # NAME or NAME:NEWNAME
    containers: list[str] = field(default_factory=list)
    force: bool = False


@dataclass
class RestoreReport:
    snapshot: Snapshot
    restored: list[tuple[str, str]] = field(default_factory=list)   # (kind, name)
    warnings: list[str] = field(default_factory=list)
    bytes: int = 0


def _volume_map(specs: list[str]) -> dict[str, str]:
    result = {}
    for spec in specs:
        name, _, new = spec.partition(":")
        if not name:
            raise InvalidArgument(f"invalid --volume {spec!r}: use NAME or NAME:NEWNAME")
        result[name] = new or name
    return result


def restore(engine, repo: Repository, ref: str, opts: RestoreOptions, progress: Progress | None = None) -> RestoreReport:
    """Restore snapshot ``ref`` (all of it, or the named volumes/containers) into ``engine``'s root."""
    progress = progress or Progress()
    snap = repo.get(ref)
    report = RestoreReport(snap)
    by_kind: dict[str, list[Part]] = {}
    for part in snap.parts:
        by_kind.setdefault(part.kind, []).append(part)
    everything = not opts.volumes and not opts.containers
    vol_map = _volume_map(opts.volumes)
    containers = by_kind.get("container", [])
    dumps = by_kind.get("dump", [])
    if opts.containers:
        wanted = set(opts.containers)
        found = {p.name for p in containers} | {p.meta.get("id") for p in containers}
        missing = [c for c in opts.containers if c not in found]
        if missing:
            raise NotFound(f"backup {snap.id} holds no container {', '.join(missing)}")
        containers = [p for p in containers if p.name in wanted or p.meta.get("id") in wanted]
        dumps = [d for d in dumps if d.name in {p.name for p in containers}]
        for part in containers:   # a container comes back with the volumes it uses
            for vol in _named_volumes(part):
                vol_map.setdefault(vol, vol)
    volume_parts = {p.name: p for p in by_kind.get("volume", [])}
    if opts.volumes:
        missing = [v for v in _volume_map(opts.volumes) if v not in volume_parts]
        if missing:
            raise NotFound(f"backup {snap.id} holds no volume {', '.join(missing)}")
    if not everything and not opts.containers:
        containers, dumps = [], []
    selected_volumes = list(volume_parts) if everything else [v for v in vol_map if v in volume_parts]
    # check everything that could refuse before changing anything
    for name in selected_volumes:
        _check_volume(engine, vol_map.get(name, name), opts.force)
    for part in containers:
        _check_container(engine, part)
    tmp = Path(tempfile.mkdtemp(prefix="restore-", dir=_tmp_dir(engine)))
    try:
        if everything or containers:
            needed = {p.meta["image"]["id"] for p in containers}
            images = [p for p in by_kind.get("image", []) if everything or p.meta.get("id") in needed]
            for part in images:
                _image(engine, repo, part, report, progress, tmp)
            _image_parents(engine, images)
        if everything:
            for part in by_kind.get("network", []):
                _network(engine, part, report)
        for name in selected_volumes:
            _volume(engine, repo, volume_parts[name], vol_map.get(name, name), opts.force, report, progress)
        for part in containers:
            _container(engine, repo, part, report, progress)
        for part in dumps:
            _dump(engine, repo, part, report, tmp)
        if everything and by_kind.get("state"):
            report.warnings.append("the snapshot holds a copy of the old state.db; it was not applied (the root was "
                                   "rebuilt from the parts); extract it with `backup inspect` if you need it")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def _tmp_dir(engine) -> Path:
    path = engine.config.tmp_dir
    path.mkdir(parents=True, exist_ok=True)
    return path


def _named_volumes(part: Part) -> list[str]:
    return [m["source"] for m in part.meta["config"].get("mounts", []) if m.get("type") == "volume" and m.get("source")]


def _check_volume(engine, name: str, force: bool) -> None:
    if engine.volumes.exists(name) and any(os.scandir(engine.volumes.data_dir(name))) and not force:
        raise Conflict(f"volume {name} exists and is not empty: restore into another name "
                       f"(--volume {name}:NEWNAME) or overwrite it with --force")


def _check_container(engine, part: Part) -> None:
    if engine.containers.store.name_taken(part.name):
        raise Conflict(f"a container named {part.name} exists: remove it first, or restore into a fresh root")


def _image(engine, repo, part: Part, report: RestoreReport, progress: Progress, tmp: Path) -> None:
    from dockerbank.image.load import load_file

    try:
        engine.images.get(part.meta["id"])
        present = True
    except NotFound:
        present = False
    if not present:
        path = tmp / "image.tar"
        _write_part(repo, part, path, progress.task(f"image {part.name[:19]}", part.size))
        load_file(engine.images, path)
        path.unlink()
    for tag in part.meta.get("tags") or []:
        try:
            engine.images.tag(part.meta["id"], tag)
        except DockerbankError as exc:
            report.warnings.append(f"image {part.name[:19]}: cannot tag {tag}: {exc}")
    report.restored.append(("image", (part.meta.get("tags") or [part.name])[0]))


def _image_parents(engine, parts: list[Part]) -> None:
    """Each restored image's parent (what ``build``/``commit`` recorded), when the parent is in the root."""
    for part in parts:
        parent = part.meta.get("parent")
        if not parent or engine.images.parent_of(part.meta["id"]):
            continue
        try:
            engine.images.get(parent)
        except NotFound:
            continue  # not in the snapshot, nor in this root: the image stands alone as in a `load`
        engine.images.set_parent(part.meta["id"], parent)


def _container_id(engine, old: str | None) -> str:
    """The container's own ID when nothing on this host holds it (docker keeps IDs), else a new one:
    the ID names the container's cgroup, which a container of another root on the same host (the
    original, when a copy is restored next to it) may still hold."""
    from dockerbank.container.names import new_id
    from dockerbank.host.cgroups import Cgroup, container_cgroups_path, detect_layout

    if not old or len(old) != 64 or any(c not in "0123456789abcdef" for c in old):
        return new_id()
    try:
        engine.containers.store.get(old)
        return new_id()
    except NotFound:
        pass
    if engine.containers.dir(old).exists():
        return new_id()
    try:
        if Cgroup(detect_layout(), container_cgroups_path(old)).exists():
            return new_id()
    except (OSError, DockerbankError):
        return new_id()
    return old


def _network(engine, part: Part, report: RestoreReport) -> None:
    meta = part.meta
    try:
        engine.networks.get(meta["name"])
        report.warnings.append(f"network {meta['name']} exists: kept as it is")
        return
    except NotFound:
        pass
    except Exception as exc:  # noqa: BLE001 - a broken network service must not stop the restore
        report.warnings.append(f"network {meta['name']} not restored: {exc}")
        return
    try:
        engine.networks.create(meta["name"], subnet=meta.get("subnet") or None, gateway=meta.get("gateway") or None,
                               internal=bool(meta.get("internal")), labels=meta.get("labels") or None,
                               options=meta.get("options") or None)
        report.restored.append(("network", meta["name"]))
    except DockerbankError as exc:
        report.warnings.append(f"network {meta['name']} not restored: {exc}")


def _volume(engine, repo, part: Part, name: str, force: bool, report: RestoreReport, progress: Progress) -> None:
    info = part.meta.get("volume") or {}
    if engine.volumes.exists(name):
        _check_volume(engine, name, force)
        data = engine.volumes.data_dir(name)
        for entry in os.scandir(data):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
    else:
        engine.volumes.create(name, labels=info.get("Labels") or None, options=info.get("Options") or None)
    reader = repo.open_part(part)
    tick = progress.task(f"volume {name}", part.size)
    report.bytes += archive.restore_tree(_Counting(reader, tick), engine.volumes.data_dir(name), part.meta)
    report.restored.append(("volume", name if name == part.name else f"{part.name} -> {name}"))


def _container(engine, repo, part: Part, report: RestoreReport, progress: Progress) -> None:
    from dockerbank.container.model import Container, ContainerConfig, ContainerState

    meta = part.meta
    image_id = meta["image"]["id"]
    try:
        engine.images.get(image_id)
    except NotFound as exc:
        names = ", ".join(meta["image"].get("repo_digests") or meta["image"].get("tags") or []) or image_id
        raise NotFound(f"container {part.name} needs image {image_id[:19]} ({names}), which is not in this root "
                       "and not in the backup: pull it first, or back up with --with-images") from exc
    cid = _container_id(engine, meta.get("id"))
    base = engine.containers.dir(cid)
    config = ContainerConfig.from_dict(meta["config"])
    try:
        for sub in ("upper", "work", "merged"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        for name, text in (meta.get("files") or {}).items():
            if name in ("hostname", "hosts", "resolv.conf"):
                (base / name).write_text(text)
        tick = progress.task(f"container {part.name}", part.size)
        report.bytes += archive.restore_layer(_Counting(repo.open_part(part), tick), base / "upper")
        for vol in _named_volumes(part):
            engine.volumes.ensure(vol)
        engine.containers.store.insert(Container(cid, part.name, meta["created"], config, ContainerState()))
        names = _named_volumes(part)
        if names:
            engine.volumes.attach(cid, names)
    except BaseException:
        try:
            engine.containers.store.delete(cid)
        except DockerbankError:
            pass
        shutil.rmtree(base, ignore_errors=True)
        raise
    report.restored.append(("container", part.name))


def _dump(engine, repo, part: Part, report: RestoreReport, tmp: Path) -> None:
    """Replay a dump into its restored database container (started for it, left running)."""
    meta = part.meta
    recipe = consistency.DumpRecipe(meta.get("recipe", "label"), meta.get("dump", ""), meta.get("restore", ""),
                                    meta.get("ready", "true"))
    container = engine.containers.get(meta["container"])
    for vol in meta.get("volumes") or []:
        info = (meta.get("volume_meta") or {}).get(vol) or {}
        engine.volumes.ensure(vol, labels=info.get("Labels") or None)
    path = tmp / "dump.sql"
    _write_part(repo, part, path, None)
    if not container.state.running:
        engine.containers.start(container.id)
    consistency.replay_dump(engine, container.id, recipe, path, tmp / "dump.err")
    report.restored.append(("dump", f"{part.name} ({recipe.name}: {recipe.restore})"))


def _write_part(repo: Repository, part: Part, path: Path, tick) -> None:
    reader = repo.open_part(part)
    with open(path, "wb") as out:
        while True:
            data = reader.read(1 << 20)
            if not data:
                break
            out.write(data)
            if tick:
                tick(len(data))


class _Counting:
    """A reader that reports progress."""

    def __init__(self, inner, tick):
        self.inner = inner
        self.tick = tick

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        if data:
            self.tick(len(data))
        return data

    def readable(self) -> bool:
        return True
