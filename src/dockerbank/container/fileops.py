"""``cp``, ``diff`` and ``export`` of a container, on top of the safe packer/unpacker
(image.pack, image.unpack) and the overlay change reader (container.changes).

A stopped container's root is mounted for the duration of the operation and unmounted after.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dockerbank.container import model
from dockerbank.errors import DockerbankError, InvalidArgument, NotFound

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import BinaryIO


@contextmanager
def mounted_rootfs(service, ref: str) -> Iterator[tuple[object, Path]]:
    """(container, merged rootfs) with the overlay mounted while the block runs."""
    container = service.get(ref)
    with service.lock(container.id):
        container = service.store.get(container.id)
        was_mounted = container.state.status in model.ACTIVE or container.state.mounted
        rootfs = service._mount_rootfs(container) if not was_mounted else service.dir(container.id) / "merged"
        try:
            yield container, rootfs
        finally:
            if not was_mounted:
                service._unmount_rootfs(container.id)


def _suffix(path: str) -> str:
    """What a path's end asks for beyond its name: ``/.`` (the contents) or ``/`` (a directory)."""
    trimmed = path.rstrip("/")
    if trimmed.endswith("/.") or trimmed == ".":
        return "/."
    return "/" if path.endswith("/") and trimmed else ""


def mount_holding(mounts: list[dict], path: str):
    """(the innermost volume or bind MountSpec holding container ``path``, the rest of the path below
    its target), or (None, path) when the path is in the container's own filesystem (pure)."""
    from dockerbank.volume import mounts as mnt

    normal = posixpath.normpath("/" + path.lstrip("/"))
    best, best_len = None, -1
    for raw in mounts:
        spec = mnt.MountSpec.from_dict(raw)
        if spec.type not in (mnt.VOLUME, mnt.BIND):
            continue  # a tmpfs lives only in the container's mount namespace (docker cp skips it too)
        target = posixpath.normpath(spec.target)
        if (normal == target or normal.startswith(target.rstrip("/") + "/")) and len(target) > best_len:
            best, best_len = spec, len(target)
    if best is None:
        return None, path
    rest = normal[best_len:].lstrip("/")
    if not rest:
        return best, "/." if _suffix(path) == "/." else "/"
    return best, "/" + rest + _suffix(path)


@dataclass(frozen=True)
class Where:
    """Where a container path lives on the host: ``root`` and the path inside it, the name docker
    gives it in an archive (None: pack_path's own rule) and whether it may be written."""

    root: Path
    path: str
    name: str | None
    read_only: bool
    what: str


def locate(service, container, rootfs: Path, path: str) -> Where:
    """Container ``path`` as the container sees it: in the volume or bind mounted there (docker
    mounts them into the container's root for an archive operation), else in ``rootfs``."""
    from dockerbank.volume import mounts as mnt

    if not path.startswith("/"):
        path = "/" + path
    spec, inner = mount_holding(container.config.mounts, path)
    if spec is None:
        return Where(rootfs, path, None, container.config.read_only, "container rootfs")
    name = {"/": posixpath.basename(posixpath.normpath(spec.target)), "/.": "."}.get(inner)  # the mount point
    if spec.type == mnt.VOLUME:
        root = Path(service.engine.volumes.data_dir(spec.source))
    else:
        root = Path(spec.source)
        if not root.is_dir():  # a file bind-mounted over a container path
            return Where(root.parent, "/" + root.name, posixpath.basename(spec.target), spec.read_only,
                         "mounted volume")
    return Where(root, inner, name, spec.read_only, "mounted volume")


def _writable(where: Where) -> None:
    if where.read_only:
        raise DockerbankError(f"{where.what} is marked read-only")


def diff(service, ref: str):
    """``docker diff``: the changes in the container's own layer."""
    from dockerbank.container.changes import changes

    container = service.get(ref)
    image = service.engine.images.get(container.config.image_id)
    lowers = service.engine.images.layers.lower_dirs(image.top_chain)
    init = service.dir(container.id) / "init"
    if init.is_dir():
        lowers = [init, *lowers]
    return changes(service.dir(container.id) / "upper", lowers)


def export(service, ref: str, out: BinaryIO) -> None:
    """``docker export``: the container's whole filesystem as a tar."""
    from dockerbank.image.pack import pack_dir

    with mounted_rootfs(service, ref) as (container, rootfs):
        record = container.config.userns  # type: ignore[attr-defined]
        pack_dir(rootfs, out, idmap=(record["uid"], record["gid"]) if record else None)


def _spool() -> tempfile.SpooledTemporaryFile:
    return tempfile.SpooledTemporaryFile(max_size=64 << 20)


def copy_from(service, ref: str, src: str, dest: str, *, follow_link: bool = False, out: BinaryIO | None = None) -> None:
    """``cp CONTAINER:SRC DEST`` (``DEST`` ``-``: a tar on ``out``). Nothing is written outside DEST."""
    from dockerbank.image.pack import pack_path
    from dockerbank.image.unpack import extract_into

    if not src.startswith("/"):
        src = "/" + src
    with mounted_rootfs(service, ref) as (container, rootfs):
        where = locate(service, container, rootfs, src)
        rootfs, src = where.root, where.path
        if dest == "-":
            assert out is not None, "a tar to stdout needs out"
            contents = src.rstrip("/").endswith("/.")
            pack_path(rootfs, src, out, follow_link=follow_link, name=None if contents else where.name)
            return
        dest_path = Path(dest)
        if dest_path.is_dir() and not src.rstrip("/").endswith("/."):
            target_dir, name = dest_path, None
        elif dest.endswith("/") and not dest_path.exists():
            raise NotFound(f"destination directory {dest} does not exist")
        else:
            if not dest_path.parent.is_dir():
                raise NotFound(f"destination directory {dest_path.parent} does not exist")
            target_dir, name = dest_path.parent, dest_path.name
            if src.rstrip("/").endswith("/."):
                dest_path.mkdir(exist_ok=True)
                target_dir, name = dest_path, "."
        with _spool() as spool:
            pack_path(rootfs, src, spool, name=name if name is not None else where.name, follow_link=follow_link)
            spool.seek(0)
            extract_into(spool, target_dir.resolve(), "/", owner=None)


def copy_to(service, ref: str, src: str, dest: str, *, follow_link: bool = False, archive: bool = False,
            stdin: BinaryIO | None = None) -> None:
    """``cp SRC CONTAINER:DEST`` (``SRC`` ``-``: a tar read from ``stdin``); resolved inside the container."""
    from dockerbank.image.pack import pack_path, stat_in_root
    from dockerbank.image.unpack import extract_into

    if not dest.startswith("/"):
        dest = "/" + dest
    with mounted_rootfs(service, ref) as (container, rootfs):
        from dockerbank.container.userns import host_root
        from dockerbank.image.unpack import IdMapping

        # a user-namespaced container's root is a subordinate host ID: files it gets are its own
        base_uid, base_gid = host_root(container.config.userns)  # type: ignore[attr-defined]
        owner = None if archive else (base_uid, base_gid)
        idmap = IdMapping(base_uid, base_gid)
        where = locate(service, container, rootfs, dest)
        _writable(where)
        rootfs, dest = where.root, where.path
        if src == "-":
            assert stdin is not None, "a tar from stdin needs stdin"
            extract_into(stdin, rootfs, dest, owner=owner, idmap=idmap)
            return
        source = Path(src)
        if not os.path.lexists(source):
            raise NotFound(f"could not find the file {src} on the host")
        try:
            is_dir = stat_in_root(rootfs, dest).is_dir
        except NotFound:
            is_dir = False
            if dest.endswith("/"):
                raise NotFound(f"Could not find the file {dest} in container") from None
        contents_only = src.rstrip("/").endswith("/.")
        if is_dir:
            target, name = dest, ("." if contents_only else None)
        else:
            target, name = posixpath.dirname(dest.rstrip("/")) or "/", posixpath.basename(dest.rstrip("/"))
        parent = source.resolve().parent if not contents_only else source.resolve()
        with _spool() as spool:
            pack_path(parent if not contents_only else source.resolve(),
                      source.name if not contents_only else ".", spool, name=name, follow_link=follow_link)
            spool.seek(0)
            extract_into(spool, rootfs, target, owner=owner, idmap=idmap)


def split_cp_arg(arg: str) -> tuple[str | None, str]:
    """``name:path`` -> (name, path); a local path (``/x``, ``./x``, ``-``) -> (None, path)."""
    if arg == "-" or arg.startswith(("/", ".")):
        return None, arg
    name, sep, path = arg.partition(":")
    if not sep:
        return None, arg
    if not name:
        raise InvalidArgument("invalid container name in copy argument")
    return name, path
