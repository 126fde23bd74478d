"""Write tar streams from directories: image layers (``commit``), ``export``, ``cp`` out.

Every tree is walked from directory fd to directory fd with ``O_NOFOLLOW``, so a symlink
inside it (or one swapped in by a running container) is archived as a symlink and never
followed out of the tree. Output is deterministic: entries in depth-first order with each
directory's names sorted bytewise (Go's ``filepath.Walk`` order, as Docker writes layers),
numeric owners only, whole-second mtimes, PAX headers only where needed, hardlinks by inode.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Iterable

from dockerbank.errors import DockerbankError, InvalidArgument, NotFound, NotSupported
from dockerbank.image.unpack import (
    OPAQUE_XATTR,
    OVERLAY_XATTR_PREFIX,
    WHITEOUT_OPAQUE,
    WHITEOUT_PREFIX,
    split_in_root,
)

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from dockerbank.streams import Writer

COPY_BUFFER = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Host-specific labels are not part of an image; overlay's own xattrs are converted or dropped.
_SKIPPED_XATTRS = ("security.selinux",)


def pack_dir(
    src: Path,
    out: Writer,
    *,
    overlay_upper: bool = False,
    paths: Iterable[str] | None = None,
    idmap: tuple[list[dict], list[dict]] | None = None,
    clamp_mtime: int | None = None,
) -> int:
    """Write the tree below ``src`` (not ``src`` itself) as an uncompressed tar to ``out``.

    ``overlay_upper``: ``src`` is an overlayfs upper dir; whiteouts (char 0/0) become
    ``.wh.NAME`` files and opaque directories get a ``.wh..wh..opq`` entry, as ``commit``
    needs for an image layer. ``paths``: only these paths (relative to ``src``, each with
    everything below it), plus their parent directories. ``idmap``: the (uid, gid) OCI mappings
    of a user-namespaced container whose files these are: owners are written as the container
    sees them (its root is 0 in the tar, not a subordinate host ID; unmapped IDs are nobody).
    ``clamp_mtime``: no mtime later than this (a reproducible build's SOURCE_DATE_EPOCH: files a
    step made get that time, older ones keep theirs). Returns the bytes written.
    """
    selected = None
    if paths is not None:
        selected = {p.strip("/") for p in paths if p.strip("/") not in ("", ".")}
    root_fd = os.open(src, _DIR_FLAGS)
    try:
        writer = _TarWriter(out, overlay_upper=overlay_upper, selected=selected)
        writer.idmap = idmap
        writer.clamp_mtime = clamp_mtime
        writer.add_children(root_fd, "", "")
        return writer.close()
    except OSError as exc:
        raise DockerbankError(f"cannot archive {src}: {exc.strerror or exc}") from exc
    finally:
        os.close(root_fd)


@dataclass(frozen=True)
class PathStat:
    """What ``docker cp`` / ``HEAD /containers/{id}/archive`` report about a container path."""

    name: str
    size: int
    mode: int          # st_mode (use ``go_mode`` for Docker's X-Docker-Container-Path-Stat)
    mtime: float
    link_target: str   # resolved container path if ``name`` is a symlink, else ""

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    @property
    def go_mode(self) -> int:
        """The mode as Go's ``os.FileMode`` bits, as Docker's API returns it."""
        bits = self.mode & 0o777
        kind = stat.S_IFMT(self.mode)
        bits |= {
            stat.S_IFDIR: 1 << 31, stat.S_IFLNK: 1 << 27, stat.S_IFIFO: 1 << 25, stat.S_IFSOCK: 1 << 24,
            stat.S_IFBLK: 1 << 26, stat.S_IFCHR: (1 << 26) | (1 << 21),
        }.get(kind, 0)
        if self.mode & stat.S_ISUID:
            bits |= 1 << 23
        if self.mode & stat.S_ISGID:
            bits |= 1 << 22
        if self.mode & stat.S_ISVTX:
            bits |= 1 << 20
        return bits

    @property
    def mtime_rfc3339(self) -> str:
        return datetime.fromtimestamp(self.mtime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stat_in_root(rootfs: Path, path: str) -> PathStat:
    """Stat a container path (parents resolved inside ``rootfs``; a final symlink not followed)."""
    root_fd = os.open(rootfs, _DIR_FLAGS)
    try:
        parent_fd, name, info = _locate(root_fd, path, follow_last=False)
        try:
            link_target = ""
            if stat.S_ISLNK(info.st_mode):
                link_target = _resolved_container_path(root_fd, path)
            return PathStat(name or "/", info.st_size, info.st_mode, info.st_mtime, link_target)
        finally:
            os.close(parent_fd)
    finally:
        os.close(root_fd)


def pack_path(
    rootfs: Path,
    path: str,
    out: Writer,
    *,
    name: str | None = None,
    follow_link: bool = False,
) -> PathStat:
    """``cp`` out of a container: archive one container ``path`` of ``rootfs`` into ``out``.

    The entry is named ``name`` (default: the path's last component, or with ``follow_link``
    the target's; ``"."`` when the path ends in ``/.``, which copies a directory's contents),
    a directory with everything below it. Parents are resolved inside ``rootfs`` chroot-like;
    the last component is followed if it is a symlink only with ``follow_link`` (``docker cp
    -L``) or a trailing ``/``; symlinks below are archived as symlinks. Raises NotFound, InvalidArgument (``dir/`` not a dir).
    Returns the stat of what was archived.
    """
    trimmed = path.rstrip("/")
    contents_only = trimmed in ("", ".") or trimmed.endswith("/.")
    wants_dir = path.endswith("/") or contents_only
    root_fd = os.open(rootfs, _DIR_FLAGS)
    try:
        parent_fd, last, info = _locate(root_fd, path, follow_last=follow_link or wants_dir)
        try:
            if wants_dir and not stat.S_ISDIR(info.st_mode):
                raise InvalidArgument(f"{path}: not a directory")
            requested = trimmed.rsplit("/", 1)[-1] if trimmed else ""
            if name is None:
                if contents_only or requested in ("", ".."):
                    name = "."
                elif follow_link and last:
                    name = last  # docker cp -L names the entry after the link's target
                else:
                    name = requested
            writer = _TarWriter(out, overlay_upper=False, selected=None)
            if last is None:  # the root itself (or a path ending in ..)
                writer.add_dir_tree(parent_fd, name, info)
            else:
                writer.add_entry(parent_fd, last, name, info)
            writer.close()
            link_target = ""
            if stat.S_ISLNK(info.st_mode):
                link_target = _resolved_container_path(root_fd, path)
            return PathStat(requested or "/", info.st_size, info.st_mode, info.st_mtime, link_target)
        finally:
            os.close(parent_fd)
    except OSError as exc:
        raise DockerbankError(f"cannot archive {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(root_fd)


def _locate(root_fd: int, path: str, *, follow_last: bool) -> tuple[int, str | None, os.stat_result]:
    """(parent fd, last name or None for a directory fd itself, lstat) of a container path."""
    try:
        parent_fd, last = split_in_root(root_fd, path, follow_last=follow_last)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise NotFound(f"Could not find the file {path} in container") from exc
    except OSError as exc:
        raise InvalidArgument(f"cannot resolve {path} in container: {exc.strerror}") from exc
    try:
        info = os.fstat(parent_fd) if last is None else os.stat(last, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError as exc:
        os.close(parent_fd)
        raise NotFound(f"Could not find the file {path} in container") from exc
    return parent_fd, last, info


def _resolved_container_path(root_fd: int, path: str) -> str:
    """Where a symlinked container path leads, as a container path (Docker's linkTarget)."""
    try:
        fd, last = split_in_root(root_fd, path, follow_last=True)
    except OSError:
        return ""
    try:
        root = os.readlink(f"/proc/self/fd/{root_fd}")
        here = os.readlink(f"/proc/self/fd/{fd}")
        rel = os.path.relpath(here, root)
        parts = [] if rel == "." else rel.split("/")
        if last:
            parts.append(last)
        return "/" + "/".join(parts)
    finally:
        os.close(fd)


class _Sink:
    """Buffered writer with ``tell`` over any ``write``-able, for tarfile's "w" mode."""

    def __init__(self, out: Writer):
        self.out = out
        self.buffer = bytearray()
        self.position = 0

    def write(self, data) -> int:
        size = len(data)
        self.position += size
        if size >= COPY_BUFFER // 4:
            self.flush()
            self.out.write(data)
        else:
            self.buffer += data
            if len(self.buffer) >= COPY_BUFFER:
                self.flush()
        return size

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        if self.buffer:
            self.out.write(bytes(self.buffer))
            self.buffer.clear()


def _or_nobody(value: int | None) -> int:
    from dockerbank.oci.idmapping import NOBODY

    return NOBODY if value is None else value


class _TarWriter:
    """Tar entries from fds, with hardlink detection and overlay whiteout conversion."""

    def __init__(self, out: Writer, *, overlay_upper: bool, selected: set[str] | None):
        self.sink = _Sink(out)
        # typeshed's open() knows neither TarFile's copybufsize nor that mode "w" only writes and tells
        self.tar = tarfile.open(  # type: ignore[call-overload]
            fileobj=self.sink, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8", copybufsize=COPY_BUFFER,
        )
        self.overlay_upper = overlay_upper
        self.selected = selected
        self.inodes: dict[tuple[int, int], str] = {}
        self.idmap: tuple[list[dict], list[dict]] | None = None
        self.clamp_mtime: int | None = None

    def close(self) -> int:
        self.tar.close()
        self.sink.flush()
        return self.sink.position

    def _wanted(self, arc: str) -> str | None:
        """'all' (pack it and all below), 'parent' (its header, then only wanted children), None."""
        if self.selected is None:
            return "all"
        if arc in self.selected or any(arc.startswith(sel + "/") for sel in self.selected):
            return "all"
        if any(sel.startswith(arc + "/") for sel in self.selected):
            return "parent"
        return None

    def add_children(self, dir_fd: int, arc_prefix: str, rel_prefix: str, filtered: bool = True) -> None:
        """Archive the entries of directory ``dir_fd`` (depth first, names sorted bytewise)."""
        stack = [(dir_fd, arc_prefix, rel_prefix, iter(_listing(dir_fd)), filtered)]
        try:
            while stack:
                fd, arcp, relp, entries, filt = stack[-1]
                entry = next(entries, None)
                if entry is None:
                    stack.pop()
                    if fd != dir_fd:
                        os.close(fd)
                    continue
                name, info = entry
                rel = relp + name
                want = self._wanted(rel) if filt else "all"
                if want is None:
                    continue
                if stat.S_ISSOCK(info.st_mode):
                    continue  # tar cannot hold sockets (Docker skips them too)
                self._header(fd, name, arcp + name, info)
                if stat.S_ISDIR(info.st_mode):
                    try:
                        child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                    except OSError as exc:
                        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                            continue  # changed under us: its header is written, skip its contents
                        raise
                    children = iter(_listing(child))
                    stack.append((child, arcp + name + "/", rel + "/", children, want == "parent"))
        finally:
            for fd, *_ in stack:
                if fd != dir_fd:
                    os.close(fd)

    def add_entry(self, parent_fd: int, name: str, arcname: str, info: os.stat_result) -> None:
        """Archive one entry of ``parent_fd`` under ``arcname``; a directory with its contents."""
        if stat.S_ISDIR(info.st_mode):
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
            try:
                self.add_dir_tree(fd, arcname, info)
            finally:
                os.close(fd)
        else:
            self._header(parent_fd, name, arcname, info)

    def add_dir_tree(self, dir_fd: int, arcname: str, info: os.stat_result) -> None:
        self._header(dir_fd, None, arcname, info)
        prefix = "" if arcname in ("", "/") else arcname.rstrip("/") + "/"
        self.add_children(dir_fd, prefix, "", filtered=False)

    def _header(self, dir_fd: int, name: str | None, arcname: str, info: os.stat_result) -> None:
        """Write the header (and data) of one entry; ``name`` None means ``dir_fd`` itself."""
        mode = info.st_mode
        member = tarfile.TarInfo(arcname)
        member.mode = stat.S_IMODE(mode)
        member.uid, member.gid = info.st_uid, info.st_gid
        if self.idmap is not None:
            from dockerbank.oci.idmapping import to_container

            member.uid = _or_nobody(to_container(self.idmap[0], info.st_uid))
            member.gid = _or_nobody(to_container(self.idmap[1], info.st_gid))
        member.uname = member.gname = ""
        member.mtime = int(info.st_mtime)
        if self.clamp_mtime is not None and member.mtime > self.clamp_mtime:
            member.mtime = self.clamp_mtime
        xattr_path: str | int = f"/proc/self/fd/{dir_fd}/{name}" if name is not None else dir_fd
        if self.overlay_upper and stat.S_ISCHR(mode) and info.st_rdev == 0:
            head, _, base = arcname.rpartition("/")
            member.name = (head + "/" if head else "") + WHITEOUT_PREFIX + base
            member.type = tarfile.REGTYPE
            member.mode = 0o600
            self.tar.addfile(member)
            return
        xattrs = _xattrs(xattr_path)
        opaque = False
        if self.overlay_upper:
            for feature in ("redirect", "metacopy"):
                if OVERLAY_XATTR_PREFIX + feature in xattrs:
                    # the entry's data lives in a lower layer under another name: a layer made
                    # from this upper dir would silently lose it
                    raise NotSupported(
                        f"cannot make a layer of {arcname!r}: overlayfs {feature} is in use;"
                        " mount container overlays with redirect_dir=off,metacopy=off"
                    )
            opaque = xattrs.get(OPAQUE_XATTR) == b"y"
            xattrs = {k: v for k, v in xattrs.items() if not k.startswith(OVERLAY_XATTR_PREFIX)}
        member.pax_headers = {**member.pax_headers, **{"SCHILY.xattr." + key: value.decode("utf-8", "surrogateescape")
                                                       for key, value in xattrs.items()}}
        if not stat.S_ISDIR(mode) and info.st_nlink > 1:
            inode = (info.st_dev, info.st_ino)
            first = self.inodes.get(inode)
            if first is not None:
                member.type = tarfile.LNKTYPE
                member.linkname = first
                self.tar.addfile(member)
                return
            self.inodes[inode] = arcname
        if stat.S_ISDIR(mode):
            member.type = tarfile.DIRTYPE
            self.tar.addfile(member)
            if opaque:
                marker = tarfile.TarInfo(arcname.rstrip("/") + "/" + WHITEOUT_OPAQUE)
                marker.mode = member.mode
                marker.uid, marker.gid, marker.mtime = member.uid, member.gid, member.mtime
                marker.uname = marker.gname = ""
                self.tar.addfile(marker)
        elif stat.S_ISREG(mode):
            member.type = tarfile.REGTYPE
            member.size = info.st_size
            assert name is not None, "only a directory is added by its own fd"
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
            try:
                self.tar.addfile(member, _ExactReader(fd, info.st_size))
            finally:
                os.close(fd)
        elif stat.S_ISLNK(mode):
            member.type = tarfile.SYMTYPE
            assert name is not None, "only a directory is added by its own fd"
            member.linkname = os.readlink(name, dir_fd=dir_fd)
            self.tar.addfile(member)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            member.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            member.devmajor, member.devminor = os.major(info.st_rdev), os.minor(info.st_rdev)
            self.tar.addfile(member)
        elif stat.S_ISFIFO(mode):
            member.type = tarfile.FIFOTYPE
            self.tar.addfile(member)


class _ExactReader:
    """Read exactly ``size`` bytes of a file: a file that shrank meanwhile is padded with zeros,
    one that grew is cut, so the tar header stays true."""

    def __init__(self, fd: int, size: int):
        self.fd = fd
        self.remaining = size

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        want = self.remaining if size is None or size < 0 else min(size, self.remaining)
        data = os.read(self.fd, want)
        if not data:
            data = bytes(want)
        self.remaining -= len(data)
        return data


def _listing(dir_fd: int) -> list[tuple[str, os.stat_result]]:
    with os.scandir(dir_fd) as entries:
        found = [(entry.name, entry.stat(follow_symlinks=False)) for entry in entries]
    found.sort(key=lambda item: os.fsencode(item[0]))
    return found


def _xattrs(path: str | int) -> dict[str, bytes]:
    try:
        if isinstance(path, int):
            names = os.listxattr(path)
        else:
            names = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOENT):
            return {}
        raise
    result = {}
    for attr in sorted(names):
        if attr in _SKIPPED_XATTRS:
            continue
        try:
            if isinstance(path, int):
                result[attr] = os.getxattr(path, attr)
            else:
                result[attr] = os.getxattr(path, attr, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOENT):
                continue
            raise
    return result
