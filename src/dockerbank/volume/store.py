"""Volumes: user data kept apart from the application (seed 000, "Trennung von Applikation &
Nutzdaten"). A volume outlives every container that uses it and is deleted only on request:
``volume rm``, ``volume prune``, or ``rm -v`` of the container owning an anonymous volume.

On disk a volume is ``volumes/<name>/_data``; its row in ``volumes`` is written after that
directory exists. Creating and deleting volumes is serialised by one ``flock`` on
``volumes/.lock`` (taken before the database's write lock, never after), so a name being
removed cannot be re-created half-way. Removal deletes the row first and commits, then moves
the directory into ``tmp/`` and deletes it there: a crash leaves at worst a directory
without a row (``system check`` removes it; a later create of that name moves it away
first), never a row without its data.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dockerbank.config import Config
from dockerbank.errors import Conflict, InvalidArgument, NotFound, NotSupported
from dockerbank.host.fs import scoped_path, tree_size
from dockerbank.labels import match_label
from dockerbank.state.db import Database
from dockerbank.volume import mounts as mnt

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    import builtins  # annotations in a class whose list() method hides the builtin

ANONYMOUS_LABEL = "com.docker.volume.anonymous"  # docker 23+ marks anonymous volumes so
LIST_FILTERS = {"dangling", "name", "label", "driver"}
PRUNE_FILTERS = {"label", "label!", "all"}
_LOCAL_OPTS = {"type", "device", "o"}


@dataclass(frozen=True)
class Volume:
    """One volume as stored. ``mountpoint`` is its ``_data`` directory on the host."""

    name: str
    driver: str
    created: str
    mountpoint: str
    labels: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    anonymous: bool = False

    @property
    def is_tmpfs(self) -> bool:
        """A local-driver tmpfs volume: mounted per use, holds nothing on disk."""
        return self.options.get("type") == "tmpfs"

    @property
    def bind_device(self) -> str | None:
        """The host directory of a ``type=none,o=bind,device=/path`` volume, else None."""
        if self.options.get("device") and {"bind", "rbind"} & set(self.options.get("o", "").split(",")):
            return self.options["device"]
        return None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class VolumeStore:
    """Named and anonymous volumes of one Dockerbank root, and which containers use them."""

    def __init__(self, config: Config, db: Database):
        self.config = config
        self.db = db
        self.dir = config.volumes_dir

    # --- paths and locks -----------------------------------------------------------------

    def data_dir(self, name: str) -> Path:
        """``volumes/<name>/_data``: what containers see of the volume (its Mountpoint)."""
        return self.dir / name / "_data"

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise creations and removals across processes (see the module docstring)."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _trash(self, name: str) -> Path | None:
        """Move ``volumes/<name>`` into ``tmp/`` (same filesystem); None when it is gone already."""
        self.config.tmp_dir.mkdir(parents=True, exist_ok=True)
        target = self.config.tmp_dir / f"volume-rm-{name}-{os.urandom(4).hex()}"
        try:
            os.rename(self.dir / name, target)
        except FileNotFoundError:
            return None
        return target

    # --- reading -------------------------------------------------------------------------

    def _volume(self, row) -> Volume:
        return Volume(
            name=row["name"], driver=row["driver"], created=row["created"],
            mountpoint=str(self.data_dir(row["name"])), labels=json.loads(row["labels"]),
            options=json.loads(row["options"]), anonymous=bool(row["anonymous"]),
        )

    def get(self, name: str) -> Volume:
        """The volume called ``name``; NotFound ``get NAME: no such volume`` (dockerd's words) otherwise."""
        row = self.db.query_one("SELECT * FROM volumes WHERE name = ?", (name,))
        if row is None:
            raise NotFound(f"get {name}: no such volume")
        return self._volume(row)

    def exists(self, name: str) -> bool:
        return self.db.query_one("SELECT 1 FROM volumes WHERE name = ?", (name,)) is not None

    def users(self, name: str) -> list[str]:
        """IDs of the containers (running or not) that use the volume."""
        rows = self.db.query("SELECT container_id FROM container_volumes WHERE volume_name = ? "
                             "ORDER BY container_id", (name,))
        return [row[0] for row in rows]

    def volumes_of(self, container_id: str) -> list[str]:
        """Names of the volumes a container is attached to."""
        rows = self.db.query("SELECT volume_name FROM container_volumes WHERE container_id = ? "
                             "ORDER BY volume_name", (container_id,))
        return [row[0] for row in rows]

    def list(self, filters: Mapping[str, list[str]] | None = None) -> list[Volume]:
        """Volumes sorted by name, filtered like ``docker volume ls --filter``.

        ``dangling=true|false|1|0`` (used by no container), ``name=`` (regular expression
        searched in the name, like docker), ``label=key`` / ``label=key=value``, ``driver=``.
        Values of one key are alternatives, except ``label`` where all must match.
        """
        filters = dict(filters or {})
        unknown = set(filters) - LIST_FILTERS
        if unknown:
            raise InvalidArgument(f"Invalid filter '{min(unknown)}'")
        used = {row[0] for row in self.db.query("SELECT DISTINCT volume_name FROM container_volumes")}
        dangling: bool | None = None
        if "dangling" in filters:
            values = set(filters["dangling"])
            if values <= {"true", "1"}:
                dangling = True
            elif values <= {"false", "0"}:
                dangling = False
            else:
                raise InvalidArgument(f"Invalid filter 'dangling=[{' '.join(filters['dangling'])}]'")
        result = []
        for row in self.db.query("SELECT * FROM volumes ORDER BY name"):
            volume = self._volume(row)
            if dangling is not None and (volume.name not in used) != dangling:
                continue
            if "name" in filters and not any(_search(p, volume.name) for p in filters["name"]):
                continue
            if "driver" in filters and volume.driver not in filters["driver"]:
                continue
            if "label" in filters and not all(match_label(volume.labels, f) for f in filters["label"]):
                continue
            result.append(volume)
        return result

    def inspect(self, name: str) -> dict:
        """Docker's ``volume inspect`` JSON object for one volume."""
        volume = self.get(name)
        return {
            "CreatedAt": volume.created,
            "Driver": volume.driver,
            "Labels": dict(volume.labels) or None,  # docker shows null, not {}, when there are none
            "Mountpoint": volume.mountpoint,
            "Name": volume.name,
            "Options": dict(volume.options) or None,
            "Scope": "local",
        }

    # --- creating ------------------------------------------------------------------------

    def create(self, name: str | None = None, *, driver: str = "local", labels: Mapping[str, str] | None = None,
               options: Mapping[str, str] | None = None, anonymous: bool = False,
               attach_to: str | None = None) -> Volume:
        """Create a volume (a random 64-hex name when ``name`` is None).

        ``anonymous=True`` marks a volume made for a container's mount without a name (``-v /path``,
        an image VOLUME): it gets docker 23+'s ``com.docker.volume.anonymous`` label, ``rm -v`` of
        its container and ``volume prune`` without ``--all`` remove it.

        An existing name returns the existing volume unchanged, like docker. ``options`` are
        the local driver's: ``type=tmpfs[,o=size=..]`` or ``type=none,o=bind,device=/path``.
        ``attach_to`` records a container as user in the same transaction, so no prune can
        slip in between creating and attaching.
        """
        return self._create(name, driver=driver, labels=labels, options=options, anonymous=anonymous,
                            attach_to=attach_to, min_length=2)[0]

    def ensure(self, name: str, *, labels: Mapping[str, str] | None = None, options: Mapping[str, str] | None = None,
               driver: str = "local", attach_to: str | None = None) -> tuple[Volume, bool]:
        """The volume ``name``, created now if missing (``-v name:/path`` on first use).

        Returns (volume, created_now). Safe when many processes ensure the same name at once:
        exactly one creates it.
        """
        if attach_to is None:
            row = self.db.query_one("SELECT * FROM volumes WHERE name = ?", (name,))
            if row is not None:
                return self._volume(row), False
        return self._create(name, driver=driver, labels=labels, options=options, anonymous=False,
                            attach_to=attach_to, min_length=1)

    def _create(self, name: str | None, *, driver: str, labels: Mapping[str, str] | None,
                options: Mapping[str, str] | None, anonymous: bool, attach_to: str | None,
                min_length: int) -> tuple[Volume, bool]:
        if name is None or name == "":
            name = os.urandom(32).hex()  # anonymous only when asked: `volume create` without a name is not
        elif not mnt.valid_volume_name(name, min_length):
            raise InvalidArgument(f"create {name}: {mnt.volume_name_error(name)}")
        if driver != "local":
            raise NotFound(f"create {name}: error looking up volume plugin {driver}: plugin \"{driver}\" not found")
        labels = dict(labels or {})
        if anonymous:
            labels.setdefault(ANONYMOUS_LABEL, "")
        options = dict(options or {})
        check_local_options(name, options)
        with self._lock(), self.db.write() as conn:
            row = conn.execute("SELECT * FROM volumes WHERE name = ?", (name,)).fetchone()
            created = row is None
            if created:
                volume_dir = self.dir / name
                if volume_dir.exists():  # left by a crash or an interrupted removal: not ours
                    stale = self._trash(name)
                    if stale is not None:
                        _rmtree(stale, ignore_errors=True)
                volume_dir.mkdir(mode=0o700)  # user data: no other user of the host gets in
                self.data_dir(name).mkdir(mode=0o755)
                conn.execute(
                    "INSERT INTO volumes (name, driver, created, labels, options, anonymous) VALUES (?,?,?,?,?,?)",
                    (name, driver, _now(), json.dumps(labels, sort_keys=True),
                     json.dumps(options, sort_keys=True), int(anonymous)),
                )
                row = conn.execute("SELECT * FROM volumes WHERE name = ?", (name,)).fetchone()
            if attach_to is not None:
                conn.execute("INSERT OR IGNORE INTO container_volumes (container_id, volume_name) VALUES (?, ?)",
                             (attach_to, name))
        volume = self._volume(row)
        if created:
            self._event("create", volume.name, volume.driver)
        return volume, created

    def _event(self, action: str, name: str, driver: str = "local") -> None:
        from dockerbank.events.log import emit

        emit(self.config, "volume", action, name, {"driver": driver})

    # --- use by containers ---------------------------------------------------------------

    def attach(self, container_id: str, names: builtins.list[str] | tuple[str, ...]) -> None:
        """Record ``container_id`` as a user of each volume (all exist, or NotFound and nothing changes)."""
        with self.db.write() as conn:
            for name in names:
                if conn.execute("SELECT 1 FROM volumes WHERE name = ?", (name,)).fetchone() is None:
                    raise NotFound(f"get {name}: no such volume")
                conn.execute("INSERT OR IGNORE INTO container_volumes (container_id, volume_name) VALUES (?, ?)",
                             (container_id, name))

    def detach(self, container_id: str) -> builtins.list[str]:
        """Forget that the container uses any volume (its ``rm`` without ``-v``); the data stays.

        Returns the names it was attached to.
        """
        with self.db.write() as conn:
            names = [r[0] for r in conn.execute(
                "SELECT volume_name FROM container_volumes WHERE container_id = ? ORDER BY volume_name",
                (container_id,))]
            conn.execute("DELETE FROM container_volumes WHERE container_id = ?", (container_id,))
        return names

    def remove_anonymous_of(self, container_id: str) -> builtins.list[str]:
        """``rm -v``: detach the container and remove its anonymous volumes no other container
        uses. Named volumes are kept (docker does the same). Returns the removed names."""
        with self._lock():
            with self.db.write() as conn:
                names = [r[0] for r in conn.execute(
                    "SELECT volume_name FROM container_volumes WHERE container_id = ?", (container_id,))]
                conn.execute("DELETE FROM container_volumes WHERE container_id = ?", (container_id,))
                removed = []
                for name in names:
                    row = conn.execute("SELECT anonymous FROM volumes WHERE name = ?", (name,)).fetchone()
                    if row is None or not row[0]:
                        continue
                    if conn.execute("SELECT 1 FROM container_volumes WHERE volume_name = ?", (name,)).fetchone():
                        continue
                    conn.execute("DELETE FROM volumes WHERE name = ?", (name,))
                    removed.append(name)
            trash = [self._trash(name) for name in removed]
        for path in trash:
            if path is not None:
                _rmtree(path, ignore_errors=True)
        for name in removed:
            self._event("destroy", name)
        return sorted(removed)

    def resolve(self, spec: mnt.MountSpec) -> mnt.ResolvedMount:
        """The runtime mount for a volume spec whose volume exists (``spec.source`` = its name)."""
        volume = self.get(spec.source)
        return mnt.resolve_volume(spec, volume.name, volume.mountpoint, volume.options)

    def share_with(self, name: str, uid: int, gid: int) -> None:
        """Open a volume to a user-namespaced container whose root is host ``uid``/``gid``: the
        volumes directory becomes 0711 (enter, never list), the volume's own directory 0710 with
        that group (the runtime, as the container's root, must reach ``_data``; no real user has
        a subordinate ID as group), and an empty ``_data`` still owned by host root becomes the
        container root's (Docker's userns-remap creates volumes owned by the remapped root).
        Data of another mapping keeps its owner."""
        volume = self.get(name)
        if volume.is_tmpfs or volume.bind_device:
            return
        if os.stat(self.dir).st_mode & 0o777 != 0o711:
            os.chmod(self.dir, 0o711)
        os.chown(self.dir / name, 0, gid)
        os.chmod(self.dir / name, 0o710)
        data = self.data_dir(name)
        st = os.stat(data)
        if st.st_uid == 0 and st.st_gid == 0 and not any(os.scandir(data)):
            os.chown(data, uid, gid)

    def populate_if_empty(self, name: str, source: Path) -> bool:
        """Docker's copy-up: when the volume is empty and ``source`` (the image's directory at the
        mount path, on the host) is a directory, copy it in, keeping owners, modes, times, xattrs,
        symlinks and hard links; the volume's root takes the source's owner and mode.

        Returns True when it copied. Concurrent calls for one volume are serialised by a lock on
        the volume's directory. The copy is made next to ``_data`` and moved in entry by entry,
        so an interrupted copy never leaves a half-copied file in the volume. tmpfs volumes are
        not populated (their tmpfs exists only inside each container).
        """
        volume = self.get(name)
        if volume.is_tmpfs:
            return False
        source = Path(source)
        try:
            src_stat = os.stat(source)
        except FileNotFoundError:
            return False
        if not stat.S_ISDIR(src_stat.st_mode):
            return False
        target = Path(volume.bind_device) if volume.bind_device else self.data_dir(name)
        fd = os.open(self.dir / name, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if any(os.scandir(target)):
                return False
            for leftover in (self.dir / name).glob("_copyup-*"):
                _rmtree(leftover, ignore_errors=True)
            if volume.bind_device:
                copy_tree(source, target)
            else:
                staging = self.dir / name / f"_copyup-{os.urandom(4).hex()}"
                staging.mkdir(mode=0o700)
                copy_tree(source, staging)
                for entry in os.listdir(staging):
                    os.rename(staging / entry, target / entry)
                staging.rmdir()
            _copy_owner_mode(src_stat, target)
            return True
        finally:
            os.close(fd)

    def populate_from_image(self, name: str, rootfs: Path, target: str) -> bool:
        """``populate_if_empty`` from the image's view ``rootfs`` (e.g. the container's merged
        overlay) at the mount path ``target``, following symlinks inside ``rootfs`` only: an
        image whose ``/data`` is a symlink to ``/etc`` is copied from its own ``/etc``, never
        from the host's."""
        return self.populate_if_empty(name, scoped_path(Path(rootfs), target))

    # --- removing ------------------------------------------------------------------------

    def remove(self, name: str, force: bool = False) -> bool:
        """Delete a volume and its data. In use by any container -> Conflict (``force`` does not
        override that, as in docker); missing -> NotFound unless ``force``. Returns whether it
        removed something."""
        with self._lock():
            with self.db.write() as conn:
                if conn.execute("SELECT 1 FROM volumes WHERE name = ?", (name,)).fetchone() is None:
                    if force:
                        return False
                    raise NotFound(f"get {name}: no such volume")
                users = [r[0] for r in conn.execute(
                    "SELECT container_id FROM container_volumes WHERE volume_name = ? ORDER BY container_id", (name,))]
                if users:
                    # Go's %v of a []string, as dockerd prints it: [id1 id2]
                    raise Conflict(f"remove {name}: volume is in use - [{' '.join(users)}]")
                conn.execute("DELETE FROM volumes WHERE name = ?", (name,))
            trash = self._trash(name)
        if trash is not None:
            _rmtree(trash, ignore_errors=True)
        self._event("destroy", name)
        return True

    def prune(self, filters: Mapping[str, builtins.list[str]] | None = None) -> tuple[builtins.list[str], int]:
        """Remove unused volumes: anonymous ones only, unless ``all=true`` (docker 23+).

        Filters: ``label=k[=v]``, ``label!=k[=v]``, ``all=true|false``. Returns (names, bytes reclaimed).
        """
        filters = dict(filters or {})
        unknown = set(filters) - PRUNE_FILTERS
        if unknown:
            raise InvalidArgument(f"Invalid filter '{min(unknown)}'")
        all_values = filters.get("all", [])
        if any(v not in ("true", "1", "false", "0") for v in all_values):
            raise InvalidArgument(f"Invalid filter 'all={all_values[0]}'")
        prune_all = any(v in ("true", "1") for v in all_values)
        with self._lock():
            with self.db.write() as conn:
                rows = conn.execute("SELECT * FROM volumes WHERE name NOT IN "
                                    "(SELECT volume_name FROM container_volumes) ORDER BY name").fetchall()
                names = []
                for row in rows:
                    volume = self._volume(row)
                    if not prune_all and not volume.anonymous:
                        continue
                    if not all(match_label(volume.labels, f) for f in filters.get("label", [])):
                        continue
                    if any(match_label(volume.labels, f) for f in filters.get("label!", [])):
                        continue
                    conn.execute("DELETE FROM volumes WHERE name = ?", (volume.name,))
                    names.append(volume.name)
            trash = [self._trash(name) for name in names]
        reclaimed = 0
        for path in trash:
            if path is not None:
                reclaimed += tree_size(path)
                _rmtree(path, ignore_errors=True)
        for name in names:
            self._event("destroy", name)
        return names, reclaimed

    def check(self, repair: bool = False) -> builtins.list[str]:
        """Problems a crash can leave, for ``system check``; fixed too when ``repair``.

        Found: directories without a row (a crash during create or remove; their data is moved
        to ``tmp/`` and deleted only with ``repair``), rows whose ``_data`` is missing (reported:
        the data is lost; ``repair`` recreates an empty ``_data`` so the volume can be used or
        removed), interrupted copy-ups and removals, and uses by containers that no longer exist.
        Run it while no other Dockerbank process is creating containers: a container being
        created is attached to its volumes a moment before its own row exists.
        """
        problems: list[str] = []
        with self._lock():
            names = {row[0] for row in self.db.query("SELECT name FROM volumes")}
            if self.dir.is_dir():
                for entry in sorted(self.dir.iterdir()):
                    if entry.name.startswith("."):
                        continue
                    if entry.name not in names:
                        problems.append(f"volume directory without a volume: {entry}")
                        if repair:
                            trash = self._trash(entry.name)
                            if trash is not None:
                                _rmtree(trash, ignore_errors=True)
                        continue
                    for leftover in entry.glob("_copyup-*"):
                        problems.append(f"interrupted copy-up: {leftover}")
                        if repair:
                            _rmtree(leftover, ignore_errors=True)
            for name in sorted(names):
                if not self.data_dir(name).is_dir():
                    problems.append(f"volume {name} has lost its data directory {self.data_dir(name)}")
                    if repair:
                        self.data_dir(name).mkdir(parents=True, mode=0o755)
            if self.config.tmp_dir.is_dir():
                for leftover in sorted(self.config.tmp_dir.glob("volume-rm-*")):
                    problems.append(f"interrupted volume removal: {leftover}")
                    if repair:
                        _rmtree(leftover, ignore_errors=True)
            stale = self.db.query("SELECT container_id, volume_name FROM container_volumes WHERE container_id "
                                  "NOT IN (SELECT id FROM containers) ORDER BY container_id, volume_name")
            for container_id, volume_name in stale:
                problems.append(f"volume {volume_name} is marked in use by container {container_id}, "
                                "which does not exist")
            if repair and stale:
                with self.db.write() as conn:
                    conn.execute("DELETE FROM container_volumes WHERE container_id NOT IN (SELECT id FROM containers)")
        return problems

    def size(self, name: str) -> int:
        """Bytes of data in the volume (for ``system df``)."""
        volume = self.get(name)
        return tree_size(Path(volume.bind_device or volume.mountpoint))


# --- helpers ---------------------------------------------------------------------------------




def _rmtree(path: Path, ignore_errors: bool = False) -> None:
    import shutil  # lazily: shutil pulls in the compression modules, a cost every CLI call would pay

    shutil.rmtree(path, ignore_errors=ignore_errors)


def _copyfileobj(fin, fout, length: int) -> None:
    import shutil

    shutil.copyfileobj(fin, fout, length)


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return pattern in text


def check_local_options(name: str, options: Mapping[str, str]) -> None:
    """Validate ``--opt`` for the local driver; what Dockerbank cannot mount is refused now."""
    for key in options:
        if key not in _LOCAL_OPTS:
            raise InvalidArgument(f'create {name}: invalid option: "{key}"')
    if not options:
        return
    kind = options.get("type", "")
    o_words = [w for w in options.get("o", "").split(",") if w]
    if kind == "tmpfs":
        if options.get("device", "tmpfs") != "tmpfs":
            raise InvalidArgument(f"create {name}: a tmpfs volume takes device=tmpfs, not {options['device']}")
        mnt.merge_tmpfs_options(o_words)  # validates
        return
    if kind in ("none", "") and {"bind", "rbind"} & set(o_words):
        device = options.get("device", "")
        if not device.startswith("/"):
            raise InvalidArgument(f"create {name}: device of a bind volume must be an absolute path, got {device!r}")
        if not os.path.isdir(device):
            raise InvalidArgument(f"create {name}: bind device {device} does not exist or is not a directory")
        return
    raise NotSupported(
        f"create {name}: the local driver of dockerbank supports only type=tmpfs[,o=size=..] and "
        f"type=none,o=bind,device=/path (got {', '.join(f'{k}={v}' for k, v in sorted(options.items()))})")


def _copy_owner_mode(st: os.stat_result, path: Path) -> None:
    _chown(path, st.st_uid, st.st_gid, follow=True)
    os.chmod(path, stat.S_IMODE(st.st_mode))


def _chown(path, uid: int, gid: int, follow: bool = False) -> None:
    try:
        os.chown(path, uid, gid, follow_symlinks=follow)
    except PermissionError:
        if os.geteuid() == 0:
            raise
        # without root, owners cannot be kept; the files belong to the caller


def _copy_xattrs(src: str, dst: str) -> None:
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return
        raise
    for attr in names:
        if attr.startswith("trusted.overlay."):  # overlayfs' own bookkeeping, not the file's
            continue
        try:
            os.setxattr(dst, attr, os.getxattr(src, attr, follow_symlinks=False), follow_symlinks=False)
        except OSError as exc:
            if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
                continue
            if exc.errno == errno.EPERM and (os.path.islink(dst) or os.geteuid() != 0):
                continue  # user.* xattrs are not allowed on symlinks
            raise


def copy_tree(src: Path, dst: Path) -> None:
    """Copy the contents of directory ``src`` into existing directory ``dst`` like ``cp -a``:
    owners, modes, times, xattrs, symlinks (not followed), hard links, devices and fifos."""
    links: dict[tuple[int, int], str] = {}

    def copy_dir(s: str, d: str) -> None:
        with os.scandir(s) as entries:
            for entry in entries:
                sp, dp = entry.path, os.path.join(d, entry.name)
                st = entry.stat(follow_symlinks=False)
                mode = st.st_mode
                if stat.S_ISDIR(mode):
                    os.mkdir(dp, 0o700)
                    copy_dir(sp, dp)
                elif stat.S_ISLNK(mode):
                    os.symlink(os.readlink(sp), dp)
                elif st.st_nlink > 1 and (st.st_dev, st.st_ino) in links:
                    os.link(links[(st.st_dev, st.st_ino)], dp)
                    continue  # shares the inode: owner, mode and xattrs are already there
                elif stat.S_ISREG(mode):
                    _copy_file(sp, dp)
                elif stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
                    os.mknod(dp, mode, st.st_rdev)
                else:
                    continue
                if st.st_nlink > 1 and not stat.S_ISDIR(mode):
                    links[(st.st_dev, st.st_ino)] = dp
                _chown(dp, st.st_uid, st.st_gid)
                if not stat.S_ISLNK(mode):
                    os.chmod(dp, stat.S_IMODE(mode))
                _copy_xattrs(sp, dp)
                os.utime(dp, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)

    copy_dir(str(src), str(dst))


def _copy_file(src: str, dst: str) -> None:
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        size = os.fstat(fin.fileno()).st_size
        copied = 0
        try:
            while copied < size:
                n = os.copy_file_range(fin.fileno(), fout.fileno(), size - copied)
                if n == 0:
                    break
                copied += n
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            fin.seek(copied)
            fout.seek(copied)
            _copyfileobj(fin, fout, 1 << 20)
        else:
            if copied < size:  # copy_file_range stopped early (file shrank or special fs)
                fin.seek(copied)
                fout.seek(copied)
                _copyfileobj(fin, fout, 1 << 20)
