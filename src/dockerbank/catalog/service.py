"""``catalog lock|build|deploy|rm`` over an engine: images built by the engine's builder from the
entry's contexts (plus the user's file, marked as licensed source when the entry is not
redistributable), deployments run as compose projects by a stack runner handed in.

An entry's Debian packages are pinned by its lock (``catalog.lock``): ``lock`` resolves them with
apt against the mirror of the base image, ``build`` checks that the mirror still has every pinned
version before the first build, then installs exactly those with the lock's time as
SOURCE_DATE_EPOCH (same lock and base, same image ID) and labels the image with the lock's digest.

A deployment lives in ``<root>/catalog/projects/<project>/``: the entry's ``compose.yaml``,
``.env`` (plain settings), ``secrets/<KEY>`` (0600, mounted by compose as secrets) and
``catalog.json`` (which entry). Every check that can refuse (unknown setting, required setting,
port in use, project deployed, image missing and not buildable) runs before anything is written;
an ``up`` that fails is taken down again, with the volumes it created, so nothing stays half-deployed.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from dockerbank.catalog import lock as locks
from dockerbank.catalog.model import Catalog, Entry, ImageSpec, UserFile
from dockerbank.catalog.settings import Resolved, env_file, resolve
from dockerbank.errors import Conflict, CorruptData, DockerbankError, InvalidArgument, NotFound

PROJECT = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
ENTRY_LABEL = "org.dockerbank.catalog.entry"
LICENSE_MARKER = ".dockerbank-license"   # build.licensed's marker: the builder labels the image non-redistributable
LOCK_LABEL = "org.dockerbank.catalog.lock"   # the digest of the lock an image was built from


class StackRunner(Protocol):
    """Runs a project directory as a compose project (the CLI hands in compose's)."""

    def up(self, directory: Path, project: str) -> None:
        """Create and start the services, wait until they are healthy; raise when one is not."""

    def down(self, directory: Path, project: str, volumes: bool) -> list[str]:
        """Remove containers and networks (and named volumes); return failures, one line each."""

    def projects(self) -> set[str]:
        """Names of the compose projects that have containers."""


class Resolver(Protocol):
    """Runs apt's resolution (``lock.resolve_argv``) in a container of a base image."""

    def resolve(self, base: str, packages: list[str]) -> tuple[int, str, str]:
        """Exit code, stdout and stderr of the resolution of ``packages`` (names or NAME=VERSION)."""


class EngineResolver:
    """The engine's resolver: a throwaway container of the base, as a build's RUN step."""

    def __init__(self, engine):
        self.engine = engine

    def resolve(self, base: str, packages: list[str]) -> tuple[int, str, str]:
        from dockerbank.build.run import run_command
        from dockerbank.engine.sinks import BufferSink

        out, err = BufferSink(), BufferSink()
        code = run_command(self.engine, base, locks.resolve_argv(packages), out, err)
        return code, out.getvalue().decode(errors="replace"), err.getvalue().decode(errors="replace")


@dataclass
class LockReport:
    entry: Entry
    path: Path
    lock: locks.Lock
    changed: bool


@dataclass
class BuildReport:
    built: list[tuple[str, str]] = field(default_factory=list)     # tag, image ID
    present: list[tuple[str, str]] = field(default_factory=list)   # already there


@dataclass
class DeployReport:
    project: str
    entry: Entry
    directory: Path
    settings: Resolved
    build: BuildReport


class CatalogService:
    """The catalog's operations on one engine."""

    def __init__(self, engine, catalog: Catalog | None = None, runner: StackRunner | None = None,
                 out: Callable[[str], None] | None = None, resolver: Resolver | None = None):
        self.engine = engine
        self.catalog = catalog or Catalog()
        self.runner = runner
        self.resolver = resolver or EngineResolver(engine)
        self.out = out or (lambda text: None)

    # places -------------------------------------------------------------------------------
    @property
    def home(self) -> Path:
        return Path(self.engine.config.root) / "catalog"

    def sources_dir(self, entry: Entry) -> Path:
        """Where the user puts the file an entry is built from."""
        return self.home / "sources" / entry.name

    def project_dir(self, project: str) -> Path:
        return self.home / "projects" / project

    # lock ---------------------------------------------------------------------------------
    def lock(self, names: list[str] | None = None) -> list[LockReport]:
        """Resolve the Debian packages of the entries ``names`` (all that install any when None)
        against the mirror of their base image and write each entry's lock; a refresh that finds
        the same versions leaves the file as it was."""
        import time

        entries = [self.catalog.get(n) for n in names] if names else self.catalog.entries()
        chosen = [(e, e.apt_image()) for e in entries]
        for entry, image in chosen:
            if image is None and names:
                raise InvalidArgument(f"{entry.name} installs no Debian packages of its own (its images come "
                                      "from other entries or from a file you supply): nothing to lock")
        reports = []
        for entry, image in chosen:
            if image is None:
                continue
            base = self._apt_base(entry, image)
            code, stdout, stderr = self.resolver.resolve(base, list(entry.packages))
            sources, pins = locks.parse_resolution(stdout)
            if code != 0 or not pins:
                raise DockerbankError(locks.failure(entry.name, stderr, code))
            new = locks.Lock(base, self._image_id(base), int(time.time()), list(entry.packages), pins, sources)
            old = self._read_lock(entry, missing_ok=True)
            if old is not None and old[0].same_resolution(new):
                new = locks.Lock(new.base, new.base_id, old[0].epoch, new.requested, new.pins, new.sources)
            text = new.text(entry.name)
            changed = old is None or old[1] != text
            if changed:
                _write(entry.lock_file, text)
            reports.append(LockReport(entry, entry.lock_file, new, changed))
        return reports

    def locked(self, entry: Entry) -> tuple[locks.Lock, str] | None:
        """The lock of an entry that installs packages, with its digest; None for one that does not."""
        if entry.apt_image() is None:
            return None
        found = self._read_lock(entry, missing_ok=False)
        assert found is not None
        return found[0], locks.digest(found[1])

    def _read_lock(self, entry: Entry, missing_ok: bool) -> tuple[locks.Lock, str] | None:
        try:
            text = entry.lock_file.read_text()
        except FileNotFoundError:
            if missing_ok:
                return None
            raise NotFound(f"{entry.name} has no lock ({entry.lock_file}): make it with "
                           f"`dockerbank catalog lock {entry.name}`") from None
        return locks.parse(text, entry.lock_file), text

    def _apt_base(self, entry: Entry, image: ImageSpec) -> str:
        froms = _froms(entry, image)
        base = froms[0] if froms else "debian:latest"
        if not self._image_id(base):
            raise NotFound(f"the base image {base} of {entry.name} is missing: make it here with "
                           f"`dockerbank base-image {base.split(':')[0]}` (nothing is pulled)")
        return base

    def _verify_lock(self, entry: Entry, image: ImageSpec) -> tuple[locks.Lock, str]:
        """The entry's lock, checked before anything is built: made for the packages entry.yaml
        lists, every pinned version still on the mirror, nothing new pulled in."""
        lock, digest = self.locked(entry) or (None, "")
        assert lock is not None
        refresh = f"refresh the lock with `dockerbank catalog lock {entry.name}` (and commit it)"
        if lock.requested != entry.packages:
            raise DockerbankError(f"the lock of {entry.name} was made for {' '.join(lock.requested)}, entry.yaml "
                                  f"lists {' '.join(entry.packages)}: {refresh}")
        base = self._apt_base(entry, image)
        code, stdout, stderr = self.resolver.resolve(base, lock.pinned())
        if code != 0:
            raise DockerbankError(locks.failure(entry.name, stderr, code, lock))
        extra = locks.unpinned(lock, locks.parse_resolution(stdout)[1])
        if extra is not None:
            raise DockerbankError(f"with the lock of {entry.name}, apt now also installs {extra[0]}={extra[1]}, "
                                  f"which the lock does not pin: {refresh}")
        base_id = self._image_id(base)
        if base_id != lock.base_id:
            self.out(f"note: {entry.name}'s lock was made on {lock.base} {lock.base_id[:19]}, this {lock.base} is "
                     f"{base_id[:19]}: the same packages, but not the same image ID as a build on the lock's base")
        return lock, digest

    # build --------------------------------------------------------------------------------
    def build(self, name: str, source: str | None = None, sha256: str | None = None,
              force: bool = False, sink=None) -> BuildReport:
        """Build the images of an entry that are missing (all of them with ``force``)."""
        entry = self.catalog.get(name)
        return self._build(entry, source, sha256, force, sink)

    def _build(self, entry: Entry, source: str | None, sha256: str | None, force: bool, sink) -> BuildReport:
        # ``force`` builds again from nothing (no build cache): a rebuild from the same lock must
        # give the same image ID on its own, not by reusing the first build's steps
        report = BuildReport()
        needed = self.catalog.images_for(entry)
        todo = []
        for owner, image in needed:
            have = self._image_id(image.tag)
            if have and not force:
                report.present.append((image.tag, have))
            else:
                todo.append((owner, image))
        # every check before the first (slow) build: the user's file, then the bases
        files = {image.tag: self.user_file(owner, image.user_file, source, sha256)
                 for owner, image in todo if image.user_file is not None}
        made = {image.tag for _, image in todo}
        for owner, image in todo:
            for base in _froms(owner, image):
                if base not in made and not self._image_id(base):
                    raise NotFound(f"the base image {base} of {owner.name} is missing: make it here with "
                                   f"`dockerbank base-image {base.split(':')[0]}` (nothing is pulled)")
        pinned = {image.tag: self._verify_lock(owner, image) for owner, image in todo if image.apt}
        # an image built on top (from the user's file) takes the time of the lock its Debian packages
        # come from (the first locked image the entry needs): same file, same lock, same image ID
        first = next(((o, i) for o, i in needed if i.apt), None)
        epoch = None
        if first is not None:
            found = pinned.get(first[1].tag) or self.locked(first[0])
            epoch = found[0].epoch if found else None
        for owner, image in todo:
            self.out(f"Building {image.tag} ({owner.name})")
            report.built.append((image.tag, self._build_one(owner, image, files.get(image.tag), sink,
                                                            pinned.get(image.tag), force, epoch)))
        return report

    def user_file(self, entry: Entry, wanted: UserFile, source: str | None, sha256: str | None) -> Path:
        """The user's file for ``wanted``: ``source`` when given, else the one file matching its
        pattern in the entry's sources directory; its SHA-256 checked when ``sha256`` is given."""
        where = self.sources_dir(entry)
        if source:
            path = Path(source)
            if not path.is_file():
                raise NotFound(f"{source}: no such file ({entry.title} needs {wanted.what}, {wanted.pattern})")
        else:
            found = sorted(where.glob(wanted.pattern)) if where.is_dir() else []
            if not found:
                raise NotFound(f"{entry.name} needs {wanted.what} ({wanted.pattern}, from {wanted.origin}): "
                               f"put it into {where}/ or pass --source FILE")
            if len(found) > 1:
                raise InvalidArgument(f"{where} holds {len(found)} files matching {wanted.pattern} "
                                      f"({', '.join(p.name for p in found)}): keep one, or pass --source FILE")
            path = found[0]
        if not fnmatch.fnmatch(path.name, wanted.pattern):
            raise InvalidArgument(f"{path.name} does not look like {wanted.what} (expected {wanted.pattern})")
        if sha256:
            digest = _sha256(path)
            if digest != sha256.lower().removeprefix("sha256:"):
                raise InvalidArgument(f"{path}: its SHA-256 is {digest}, not {sha256}: a damaged download or "
                                      "another release; fetch it again")
        return path

    def _build_one(self, entry: Entry, image: ImageSpec, user_file: Path | None, sink,
                   pinned: tuple[locks.Lock, str] | None = None, no_cache: bool = False,
                   epoch: int | None = None) -> str:
        from dockerbank.build import context as contexts
        from dockerbank.build.executor import BuildOptions

        assert image.context is not None
        self.engine.config.tmp_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="catalog-", dir=self.engine.config.tmp_dir))
        try:
            ctx = work / "context"
            shutil.copytree(entry.directory / image.context, ctx)
            if user_file is not None:
                assert image.user_file is not None
                shutil.copyfile(user_file, ctx / image.user_file.target)
                if not entry.redistributable:
                    (ctx / LICENSE_MARKER).write_text(
                        f"{user_file.name}: {entry.title}, {entry.license}; not redistributable\n")
            redistributable = entry.redistributable if image.redistributable is None else image.redistributable
            labels = {
                "org.opencontainers.image.title": entry.title,
                "org.opencontainers.image.version": entry.version,
                "org.opencontainers.image.licenses": image.license or entry.license,
                "org.opencontainers.image.source": image.source or entry.source,
                "org.opencontainers.image.description": entry.purpose,
                ENTRY_LABEL: entry.name,
                "org.dockerbank.redistributable": "true" if redistributable else "false",
            }
            if entry.packages and image.source is None:
                labels["org.dockerbank.catalog.packages"] = " ".join(entry.packages)
            args: dict[str, str] = {}
            if pinned is not None:
                lock, digest = pinned
                labels[LOCK_LABEL] = digest
                args = {"PACKAGES": " ".join(lock.pinned())}
                epoch = lock.epoch
            if epoch is not None:
                args["SOURCE_DATE_EPOCH"] = str(epoch)
                _set_mtimes(ctx, epoch)   # the checkout's (and the user's file's) times are not the entry's
            out = sink if sink is not None else _NullSink()
            context = contexts.from_directory(ctx)
            options = BuildOptions(tags=[image.tag], labels=labels, build_args=args, no_cache=no_cache)
            return self.engine.container_ops.build(context, options, out, quiet=sink is None)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _image_id(self, ref: str) -> str:
        try:
            return self.engine.images.resolve(ref).id
        except NotFound:
            return ""

    # deploy -------------------------------------------------------------------------------
    def deploy(self, name: str, project: str | None, sets: dict[str, str], *, source: str | None = None,
               sha256: str | None = None, sink=None) -> DeployReport:
        """Deploy an entry as compose project ``project`` (default: the entry's name)."""
        runner = self._runner()
        entry = self.catalog.get(name)
        project = project or entry.name
        if not PROJECT.match(project):
            raise InvalidArgument(f"invalid project name {project!r}: use lower-case letters, digits, '-' and '_'")
        if project in runner.projects():
            raise Conflict(f"project {project} is already deployed: remove it with `dockerbank catalog rm "
                           f"{project}` or choose another with -p")
        directory = self.project_dir(project)
        kept = self._kept(directory, entry)
        settings = resolve(entry, sets, kept)
        for key, setting in entry.settings.items():
            if setting.port:
                _check_port(int(settings.env[key]), key)
        build = self._build(entry, source, sha256, False, sink)
        fresh_dir = not directory.exists()
        volumes_before = {v.name for v in self.engine.volumes.list()}
        self._write_project(directory, entry, settings)
        try:
            runner.up(directory, project)
        except BaseException as exc:
            failures = runner.down(directory, project, volumes=False)
            for key in entry.volumes:   # only the volumes this deploy created: older data stays
                volume = f"{project}_{key}"
                if volume not in volumes_before and self.engine.volumes.exists(volume):
                    try:
                        self.engine.volumes.remove(volume)
                    except DockerbankError as err:
                        failures.append(err.message)
            if fresh_dir:
                shutil.rmtree(directory, ignore_errors=True)
            if isinstance(exc, DockerbankError):
                tail = f" (and while taking it down: {failures[-1]})" if failures else ""
                raise DockerbankError(f"deploy of {entry.name} as {project} failed, nothing was left: "
                                      f"{exc.message}{tail}", exit_code=exc.exit_code) from None
            raise
        return DeployReport(project, entry, directory, settings, build)

    def _kept(self, directory: Path, entry: Entry) -> dict[str, str]:
        """Settings and secrets of an earlier deployment under this project name (a redeploy, or a
        restore of its backup, must find the same passwords)."""
        meta = directory / "catalog.json"
        if not meta.exists():
            return {}
        try:
            info = json.loads(meta.read_text())
        except (OSError, ValueError) as exc:
            raise CorruptData(f"{meta}: unreadable ({exc}); remove {directory} to start afresh") from None
        if info.get("entry") != entry.name:
            raise Conflict(f"project {directory.name} keeps the settings of entry {info.get('entry')}: "
                           f"`dockerbank catalog rm --purge {directory.name}` first, or choose another -p")
        kept = dict(info.get("settings") or {})
        for key in entry.settings:
            secret = directory / "secrets" / key
            if secret.exists():
                kept[key] = secret.read_text()
        return kept

    def _write_project(self, directory: Path, entry: Entry, settings: Resolved) -> None:
        from dockerbank.host.permissions import create_private_file

        (directory / "secrets").mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        for key, value in settings.secrets.items():
            path = directory / "secrets" / key
            create_private_file(path)            # 0600 before the value is in it
            path.write_text(value)
        _write(directory / ".env", env_file(settings.env))
        _write(directory / "compose.yaml", entry.compose_file.read_text())
        _write(directory / "catalog.json", json.dumps({"entry": entry.name, "version": entry.version,
                                                        "settings": settings.env}, indent=1) + "\n")

    # rm -----------------------------------------------------------------------------------
    def rm(self, project: str, *, volumes: bool = False, purge: bool = False) -> list[str]:
        """Take a deployment down (its volumes too with ``volumes``); ``purge`` also drops its
        kept settings and secrets. Returns failures, one line each."""
        runner = self._runner()
        directory = self.project_dir(project)
        if not (directory / "compose.yaml").exists():
            raise NotFound(f"no catalog deployment {project!r} (in {directory.parent})")
        failures = runner.down(directory, project, volumes=volumes)
        if purge and not failures:
            shutil.rmtree(directory)
        return failures

    def deployments(self) -> list[dict[str, str]]:
        """The catalog's projects: name, entry, whether compose runs it."""
        base = self.home / "projects"
        running = self._runner().projects() if self.runner else set()
        out = []
        for directory in sorted(base.iterdir()) if base.is_dir() else []:
            try:
                info = json.loads((directory / "catalog.json").read_text())
            except (OSError, ValueError):
                continue
            out.append({"project": directory.name, "entry": info.get("entry", ""),
                        "version": info.get("version", ""),
                        "state": "deployed" if directory.name in running else "removed (settings kept)"})
        return out

    def _runner(self) -> StackRunner:
        if self.runner is None:
            raise RuntimeError("CatalogService needs a stack runner for deploy and rm")
        return self.runner


class _NullSink:
    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _set_mtimes(directory: Path, when: int) -> None:
    """Every file and directory below ``directory`` (itself too) gets mtime ``when``."""
    for path in sorted(directory.rglob("*"), reverse=True):
        os.utime(path, (when, when), follow_symlinks=False)
    os.utime(directory, (when, when))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _froms(entry: Entry, image: ImageSpec) -> list[str]:
    """The images ``image``'s Dockerfile builds FROM (``debian`` means ``debian:latest``)."""
    assert image.context is not None
    out = []
    for line in (entry.directory / image.context / "Dockerfile").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].upper() == "FROM":
            out.append(parts[1] if ":" in parts[1] else parts[1] + ":latest")
    return out


def _check_port(port: int, setting: str) -> None:
    """Refuse a host port something already listens on (before anything is created)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            raise Conflict(f"port {port} is in use on this host: choose another with --set {setting}=PORT") from None
