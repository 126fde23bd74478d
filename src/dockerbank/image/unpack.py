"""Unpack tar streams safely: image layers (overlayfs lower layers) and ``cp`` into a rootfs.

Rules (modelled on moby ``pkg/archive`` and containerd ``archive/tar.go``):

* Entry names lose leading ``/`` and ``./``; an absolute name is clamped at the root
  (``/../etc/x`` -> ``etc/x``, as Go's ``filepath.Clean`` does); a relative name whose cleaned
  form escapes the destination (``../x``) is refused with ``HostileArchive`` (moby's
  "breakout" error; containerd would clamp it instead).
* Every parent directory is resolved inside the root like a chroot (containerd's
  ``fs.RootPath``): a symlink met on the way is followed with ``/`` and ``..`` clamped at the
  root, and the walk itself goes from directory fd to directory fd with ``O_NOFOLLOW``, so a
  symlink ``a -> /etc`` followed by ``a/passwd`` writes ``<root>/etc/passwd``, never the host's.
  The last component is never followed: an existing entry is replaced, not written through.
* Symlink targets are stored as they are (they mean something only inside the container).
  A hardlink must name an existing non-directory of the same archive, else ``HostileArchive``.
* Character/block devices and FIFOs are created (we run as root, as Docker does), always
  inside the root because of the walk above.
* Layer mode: ``.wh.NAME`` becomes an overlay whiteout (char device 0/0 named NAME),
  ``.wh..wh..opq`` sets ``trusted.overlay.opaque=y`` on its directory, other ``.wh..wh.*``
  entries (AUFS metadata) are skipped. ``trusted.overlay.*`` xattrs from an archive are
  dropped: they would steer overlayfs itself.
* A stream that is truncated, corrupt or lacks the end-of-archive marker raises
  ``CorruptData``; the caller owns the destination and removes it.
"""

from __future__ import annotations

import errno
import gzip
import os
import posixpath
import shutil
import stat
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from dockerbank.errors import Conflict, CorruptData, DockerbankError, HostileArchive, InvalidArgument, NotFound

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from dockerbank.streams import Reader

COPY_BUFFER = 1 << 20
# tarfile's stream buffer: every 512-byte header read copies what is left of it, so a
# moderate size keeps small-file layers fast while data reads still come in large pieces.
STREAM_BUFFER = 1 << 16
MAX_SYMLINK_HOPS = 40
NAME_MAX = 255
MAX_META_HEADER = 1 << 20

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
OVERLAY_XATTR_PREFIX = "trusted.overlay."
XATTR_PAX_PREFIXES = ("SCHILY.xattr.", "SCHILY.xattrs.")  # the second: old containerd spelling

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class IdMapping:
    """Shift of owners while unpacking; identity for rootful containers."""

    uid_offset: int = 0
    gid_offset: int = 0


IDENTITY = IdMapping()


def unpack_layer(tar_stream: Reader, dest: Path, idmap: IdMapping = IDENTITY) -> int:
    """Unpack the uncompressed layer tar read from ``tar_stream`` into the directory ``dest``.

    ``dest`` must exist (an empty directory the caller removes on failure). Whiteouts become
    overlayfs whiteouts. Returns the number of bytes of regular-file data unpacked.
    Raises HostileArchive for an entry that tries to leave ``dest`` or link to what the
    archive does not hold, CorruptData for a broken stream.
    """
    root_fd = os.open(dest, _DIR_FLAGS)
    try:
        extractor = _Extractor(root_fd, [], idmap, layer_mode=True)
        return extractor.run(tar_stream)
    finally:
        os.close(root_fd)


def extract_into(
    tar_stream: Reader,
    rootfs: Path,
    path: str,
    *,
    idmap: IdMapping = IDENTITY,
    owner: tuple[int, int] | None = None,
    no_overwrite_dir_non_dir: bool = True,
) -> int:
    """``cp`` into a container: extract an uncompressed tar into directory ``path`` of ``rootfs``.

    ``path`` is a path inside the container; it and every symlink met while extracting are
    resolved inside ``rootfs`` (chroot-like), so nothing lands outside it. Entries with ``..``
    leaving ``path`` are refused. Whiteout names are ordinary files here. ``owner`` (uid, gid)
    replaces the archive's owners (``docker cp`` without ``-a`` makes files root's); else
    the archive's owners are shifted by ``idmap``. With ``no_overwrite_dir_non_dir`` (Docker's
    ``cp`` default) replacing a directory by a non-directory or the reverse is a Conflict.
    The stream may be gzip or zstd compressed. Returns the bytes of file data written. Raises NotFound/InvalidArgument for a bad ``path``.
    """
    from dockerbank.image.compression import open_decompressed  # no cycle: it imports errors only

    root_fd = os.open(rootfs, _DIR_FLAGS)
    try:
        base = [part for part in path.split("/") if part]
        try:
            target_fd = open_dir_in_root(root_fd, base, create=False)
        except FileNotFoundError as exc:
            raise NotFound(f"Could not find the file {path} in container") from exc
        except NotADirectoryError as exc:
            raise InvalidArgument(f"extraction point is not a directory: {path}") from exc
        except OSError as exc:
            raise InvalidArgument(f"cannot resolve {path} in container: {exc.strerror}") from exc
        # Extract relative to the resolved directory, but keep resolving symlinks against the
        # container's root: the extractor walks from the root through the resolved parts.
        resolved = _resolved_parts(root_fd, target_fd)
        os.close(target_fd)
        extractor = _Extractor(
            root_fd, resolved, idmap, layer_mode=False, owner=owner,
            no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
        )
        reader, _kind = open_decompressed(tar_stream)  # the Docker API accepts gzip too
        return extractor.run(reader)
    finally:
        os.close(root_fd)


# --- resolving paths inside a root ---------------------------------------------------------


def clean_name(name: str, *, what: str = "entry") -> list[str]:
    """Split an archive name into safe components relative to the destination.

    Leading ``/`` and ``./`` are dropped; an absolute name is clamped at the root; a relative
    name that climbs out with ``..`` raises HostileArchive. ``[]`` means the root itself.
    """
    if "\x00" in name:  # only a PAX header can carry one; no path on Linux can
        raise _refuse(f"{what} {_short(name)!r} has a NUL byte in its name")
    if name.startswith("/"):
        norm = posixpath.normpath(name).lstrip("/")
    else:
        norm = posixpath.normpath(name)
        if norm == ".." or norm.startswith("../"):
            raise _refuse(f"{what} {_short(name)!r} points outside the destination")
    if norm in ("", "."):
        return []
    parts = norm.split("/")
    for part in parts:
        # at most 4 bytes per character: only long names need encoding to be measured
        if len(part) > NAME_MAX // 4 and len(os.fsencode(part)) > NAME_MAX:
            raise _refuse(f"{what} {_short(name)!r} has a name component longer than {NAME_MAX} bytes")
    return parts


def open_dir_in_root(root_fd: int, parts: list[str], *, create: bool, on_create=None) -> int:
    """Open directory ``parts`` below ``root_fd``, resolving symlinks as if ``root_fd`` were ``/``.

    Walks one component at a time with ``openat(O_NOFOLLOW)``; a symlink is read and its
    target spliced in (absolute targets restart at the root, ``..`` never climbs above it).
    Missing directories are made (mode 0755) when ``create`` is set, and ``on_create(dir_fd,
    name)`` is called for each. Returns a new fd the caller closes. Raises FileNotFoundError,
    NotADirectoryError or OSError(ELOOP) like the kernel would.
    """
    stack = [root_fd]  # stack[0] belongs to the caller
    pending = list(reversed(parts))
    hops = 0
    try:
        while pending:
            name = pending.pop()
            if name in ("", "."):
                continue
            if name == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            current = stack[-1]
            try:
                stack.append(os.open(name, _DIR_FLAGS, dir_fd=current))
                continue
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(name, 0o755, dir_fd=current)
                except FileExistsError:
                    pass  # made concurrently: open it on the next round
                else:
                    if on_create is not None:
                        on_create(current, name)
                pending.append(name)
                continue
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
            info = os.stat(name, dir_fd=current, follow_symlinks=False)
            if not stat.S_ISLNK(info.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, "Not a directory", name)
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                raise OSError(errno.ELOOP, "Too many levels of symbolic links", name)
            target = os.readlink(name, dir_fd=current)
            if target.startswith("/"):
                while len(stack) > 1:
                    os.close(stack.pop())
            pending.extend(reversed(target.split("/")))
        return stack.pop() if len(stack) > 1 else os.dup(root_fd)
    finally:
        for fd in stack[1:]:
            os.close(fd)


def split_in_root(root_fd: int, path: str, *, follow_last: bool = False) -> tuple[int, str | None]:
    """Resolve a container path to (open parent dir fd, last component) inside the root.

    The parent is resolved chroot-like; the last component is followed only with
    ``follow_last`` (then the returned fd is the target directory's parent, looked up again).
    ``None`` as the name means the path is the root itself. The caller closes the fd.
    """
    parts = [part for part in path.split("/") if part not in ("", ".")]
    hops = 0
    while True:
        if not parts or parts[-1] == "..":
            fd = open_dir_in_root(root_fd, parts, create=False)
            return fd, None
        parent_fd = open_dir_in_root(root_fd, parts[:-1], create=False)
        name = parts[-1]
        if not follow_last:
            return parent_fd, name
        try:
            info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return parent_fd, name
        if not stat.S_ISLNK(info.st_mode):
            return parent_fd, name
        hops += 1
        if hops > MAX_SYMLINK_HOPS:
            os.close(parent_fd)
            raise OSError(errno.ELOOP, "Too many levels of symbolic links", path)
        target = os.readlink(name, dir_fd=parent_fd)
        os.close(parent_fd)
        if target.startswith("/"):
            parts = [part for part in target.split("/") if part not in ("", ".")]
        else:
            parts = parts[:-1] + [part for part in target.split("/") if part not in ("", ".")]


def _resolved_parts(root_fd: int, dir_fd: int) -> list[str]:
    """Components of ``dir_fd``'s real path relative to the root (both open directories)."""
    root = os.readlink(f"/proc/self/fd/{root_fd}")
    target = os.readlink(f"/proc/self/fd/{dir_fd}")
    rel = os.path.relpath(target, root)
    if rel == ".":
        return []
    if rel == ".." or rel.startswith("../"):
        raise HostileArchive(f"extraction point resolves outside the container: {target}")
    return rel.split("/")


# --- the extractor ------------------------------------------------------------------------


class _EndTracker(tarfile.TarInfo):
    """TarInfo that remembers why header reading stopped, to tell a proper end from truncation,
    and that refuses oversized metadata headers before tarfile reads them into memory.

    tarfile ends iteration silently on a missing, short or garbled header after the first
    member; Go's reader reports the latter two, and we want all three reported.
    """

    def _proc_member(self, archive):
        if self.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
                         tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
            if self.size > MAX_META_HEADER:
                # Go's archive/tar has the same 1 MiB limit; tarfile would read any size into memory
                raise _refuse(f"a metadata header of {self.size} bytes (limit {MAX_META_HEADER})")
        return super()._proc_member(archive)  # type: ignore[misc]  # tarfile's hook, absent from typeshed

    @classmethod
    def fromtarfile(cls, archive):  # noqa: D401 - tarfile's hook
        try:
            return super().fromtarfile(archive)
        except tarfile.HeaderError as exc:
            archive._dockerbank_stop = exc
            raise


class _Extractor:
    """One extraction: entries of a tar applied below ``base`` inside ``root_fd``."""

    def __init__(
        self,
        root_fd: int,
        base: list[str],
        idmap: IdMapping,
        *,
        layer_mode: bool,
        owner: tuple[int, int] | None = None,
        no_overwrite_dir_non_dir: bool = False,
    ):
        self.root_fd = root_fd
        self.base = base
        self.idmap = idmap
        self.layer_mode = layer_mode
        self.owner = owner
        self.no_overwrite = no_overwrite_dir_non_dir
        self.dir_fds: dict[tuple[str, ...], int] = {}
        self.dir_times: list[tuple[tuple[str, ...], int]] = []
        self.size = 0

    # driver

    def run(self, stream: Reader) -> int:
        name = "?"
        try:
            try:
                archive = tarfile.open(  # type: ignore[call-overload]  # mode "r|" only reads; typeshed wants seek/write
                    fileobj=stream, mode="r|", bufsize=STREAM_BUFFER, tarinfo=_EndTracker,
                )
            except tarfile.ReadError as exc:
                raise CorruptData(f"layer is not a valid tar archive: {exc}") from exc
            with archive:
                for member in archive:
                    name = member.name
                    self._entry(archive, member)
                stop = getattr(archive, "_dockerbank_stop", None)
                # both exist in tarfile but are missing from typeshed (not in tarfile.__all__)
                if not isinstance(stop, tarfile.EOFHeaderError):  # type: ignore[attr-defined]
                    garbled = isinstance(stop, tarfile.InvalidHeaderError)  # type: ignore[attr-defined]
                    reason = "garbled header" if garbled else "no end-of-archive marker"
                    raise CorruptData(
                        f"truncated or corrupt tar stream after entry {_short(name)!r} ({reason})"
                    )
            self._set_dir_times()
            return self.size
        except DockerbankError:
            raise
        except OSError as exc:
            if isinstance(exc, gzip.BadGzipFile):
                raise CorruptData(f"corrupt gzip stream at entry {_short(name)!r}: {exc}") from exc
            raise _os_error(name, exc) from exc
        except (tarfile.TarError, EOFError, zlib.error, UnicodeError) as exc:
            raise CorruptData(f"truncated or corrupt tar stream at entry {_short(name)!r}: {exc}") from exc
        except Exception as exc:
            if type(exc).__name__ == "ZstdError":
                raise CorruptData(f"corrupt zstd stream at entry {_short(name)!r}: {exc}") from exc
            raise
        finally:
            for fd in self.dir_fds.values():
                os.close(fd)
            self.dir_fds.clear()

    def _entry(self, archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        parts = clean_name(member.name)
        if self.layer_mode and any(part.startswith(WHITEOUT_META_PREFIX) for part in parts[:-1]):
            return  # inside AUFS metadata (.wh..wh.plnk/...)
        if not parts:
            if not member.isdir():
                raise _refuse(f"entry {member.name!r} would replace the destination itself")
            fd = open_dir_in_root(self.root_fd, self.base, create=False)
            try:
                self._metadata(member, fd=fd)
            finally:
                os.close(fd)
            self.dir_times.append(((), _mtime_ns(member)))
            return
        name = parts[-1]
        parent = tuple(parts[:-1])
        if self.layer_mode and name.startswith(WHITEOUT_PREFIX):
            self._whiteout(parent, name, member)
            return
        parent_fd = self._parent(parent)
        if member.isdir():
            self._directory(parent_fd, parent, name, member)
        elif member.isreg():
            self._replace(parent_fd, parent, name, member)
            self._file(archive, parent_fd, name, member)
        elif member.issym():
            if not member.linkname or "\x00" in member.linkname:
                raise CorruptData(f"symlink {_short(member.name)!r} has an empty target or one with a NUL byte")
            self._replace(parent_fd, parent, name, member)
            os.symlink(member.linkname, name, dir_fd=parent_fd)
            self._metadata(member, parent_fd=parent_fd, name=name, symlink=True)
        elif member.islnk():
            self._hardlink(parent_fd, parent, name, member)
        elif member.ischr() or member.isblk() or member.isfifo():
            self._replace(parent_fd, parent, name, member)
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK if member.isblk() else stat.S_IFIFO
            device = os.makedev(member.devmajor, member.devminor) if kind != stat.S_IFIFO else 0
            os.mknod(name, kind | (member.mode & 0o7777), device, dir_fd=parent_fd)
            self._metadata(member, parent_fd=parent_fd, name=name)
        else:
            raise CorruptData(f"entry {member.name!r} has an unsupported tar type {member.type!r}")

    # entry kinds

    def _directory(self, parent_fd: int, parent: tuple[str, ...], name: str, member: tarfile.TarInfo) -> None:
        existing = _lstat(parent_fd, name)
        if existing is None or not stat.S_ISDIR(existing.st_mode):
            if existing is not None:
                if self.no_overwrite:
                    shown = "/".join(parent + (name,))
                    raise Conflict(f"cannot overwrite non-directory {shown!r} with directory")
                self._remove(parent_fd, parent, name, existing)
            os.mkdir(name, 0o700, dir_fd=parent_fd)
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        try:
            self._metadata(member, fd=fd)
        finally:
            os.close(fd)
        self.dir_times.append((parent + (name,), _mtime_ns(member)))

    def _file(self, archive: tarfile.TarFile, parent_fd: int, name: str, member: tarfile.TarInfo) -> None:
        fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=parent_fd)
        try:
            source = archive.fileobj
            source.seek(member.offset_data)
            # tarfile keeps (offset, size) pairs here; typeshed says bytes
            sparse: list[tuple[int, int]] | None = member.sparse  # type: ignore[assignment]
            if sparse is not None:
                for offset, size in sparse:
                    os.lseek(fd, offset, os.SEEK_SET)
                    _copy(source, fd, size)
                os.ftruncate(fd, member.size)
            else:
                _copy(source, fd, member.size)
            self.size += member.size
            self._metadata(member, fd=fd)
            os.utime(fd, ns=(_mtime_ns(member),) * 2)
        finally:
            os.close(fd)

    def _hardlink(self, parent_fd: int, parent: tuple[str, ...], name: str, member: tarfile.TarInfo) -> None:
        link = f"{_short(member.name)!r} -> {_short(member.linkname)!r}"
        target = clean_name(member.linkname, what=f"hardlink {member.name!r} ->")
        if not target:
            raise _refuse(f"hardlink {member.name!r} points at the destination itself")
        if self.layer_mode and target[0].startswith(WHITEOUT_META_PREFIX):
            raise _refuse(f"hardlink {member.name!r} into AUFS metadata is not supported")
        try:
            target_parent = self._parent(tuple(target[:-1]), create=False)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise _refuse(f"hardlink {link}: target is not in the archive") from exc
        target_info = _lstat(target_parent, target[-1])
        if target_info is None:
            raise _refuse(f"hardlink {link}: target is not in the archive")
        if stat.S_ISDIR(target_info.st_mode):
            raise _refuse(f"hardlink {link} targets a directory")
        existing = _lstat(parent_fd, name)
        if existing is not None:
            if existing.st_ino == target_info.st_ino and existing.st_dev == target_info.st_dev:
                return  # already that file
            self._replace(parent_fd, parent, name, member)
            parent_fd = self._parent(parent)
            target_parent = self._parent(tuple(target[:-1]), create=False)
        os.link(target[-1], name, src_dir_fd=target_parent, dst_dir_fd=parent_fd, follow_symlinks=False)

    def _whiteout(self, parent: tuple[str, ...], name: str, member: tarfile.TarInfo) -> None:
        parent_fd = self._parent(parent)
        if name == WHITEOUT_OPAQUE:
            os.setxattr(parent_fd, OPAQUE_XATTR, b"y")
            return
        if name.startswith(WHITEOUT_META_PREFIX):
            return  # AUFS metadata: not applicable to overlayfs
        hidden = name[len(WHITEOUT_PREFIX):]
        if hidden in ("", ".", ".."):
            raise _refuse(f"invalid whiteout {member.name!r}")
        existing = _lstat(parent_fd, hidden)
        if existing is not None:
            if not _is_whiteout(existing):
                raise CorruptData(
                    f"whiteout {member.name!r} hides {hidden!r} of the same layer"
                    " (a whiteout only applies to lower layers)"
                )
        else:
            os.mknod(hidden, stat.S_IFCHR, 0, dir_fd=parent_fd)
        uid, gid = self._ids(member)
        os.chown(hidden, uid, gid, dir_fd=parent_fd, follow_symlinks=False)

    # helpers

    def _parent(self, parent: tuple[str, ...], *, create: bool = True) -> int:
        """A cached fd of directory ``parent`` (relative to the base), made if missing."""
        fd = self.dir_fds.get(parent)
        if fd is not None:
            return fd
        fd = open_dir_in_root(
            self.root_fd, self.base + list(parent), create=create, on_create=self._implied_dir,
        )
        if len(self.dir_fds) >= 256:
            self._forget_dirs()
        self.dir_fds[parent] = fd
        return fd

    def _forget_dirs(self, keep: tuple[str, ...] | None = None) -> None:
        for key in list(self.dir_fds):
            if key != keep:
                os.close(self.dir_fds.pop(key))

    def _implied_dir(self, parent_fd: int, name: str) -> None:
        """A parent the archive did not list: 0755 (whatever the umask), owned by (mapped) root."""
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        try:
            os.fchmod(fd, 0o755)
            if self.idmap != IDENTITY or self.owner is not None:
                uid, gid = self.owner or (self.idmap.uid_offset, self.idmap.gid_offset)
                os.fchown(fd, uid, gid)
        finally:
            os.close(fd)

    def _replace(self, parent_fd: int, parent: tuple[str, ...], name: str, member: tarfile.TarInfo) -> None:
        """Remove whatever is at ``name`` so a non-directory entry can take its place."""
        existing = _lstat(parent_fd, name)
        if existing is None:
            return
        if stat.S_ISDIR(existing.st_mode) and self.no_overwrite:
            raise Conflict(f"cannot overwrite directory {'/'.join(parent + (name,))!r} with non-directory")
        self._remove(parent_fd, parent, name, existing)

    def _remove(self, parent_fd: int, parent: tuple[str, ...], name: str, existing: os.stat_result) -> None:
        if stat.S_ISDIR(existing.st_mode):
            shutil.rmtree(name, dir_fd=parent_fd)
        else:
            os.unlink(name, dir_fd=parent_fd)
        # cached directory fds below what was removed are stale now
        self._forget_dirs(keep=parent)

    def _ids(self, member: tarfile.TarInfo) -> tuple[int, int]:
        if self.owner is not None:
            return self.owner
        return member.uid + self.idmap.uid_offset, member.gid + self.idmap.gid_offset

    def _metadata(
        self,
        member: tarfile.TarInfo,
        *,
        fd: int | None = None,
        parent_fd: int | None = None,
        name: str | None = None,
        symlink: bool = False,
    ) -> None:
        """Owner, xattrs, mode (after chown, which clears setuid), mtime of non-directories."""
        uid, gid = self._ids(member)
        if fd is not None:
            os.fchown(fd, uid, gid)
            target: int | str = fd
        else:
            assert name is not None, "a member without an fd is named in parent_fd"
            os.chown(name, uid, gid, dir_fd=parent_fd, follow_symlinks=False)
            target = f"/proc/self/fd/{parent_fd}/{name}"
        for key, value in member.pax_headers.items():
            prefix = next((p for p in XATTR_PAX_PREFIXES if key.startswith(p)), None)
            if prefix is None:
                continue
            attr = key[len(prefix):]
            if not attr or attr.startswith(OVERLAY_XATTR_PREFIX):
                continue
            try:
                data = value.encode("utf-8", "surrogateescape")
                if isinstance(target, int):
                    os.setxattr(target, attr, data)
                else:
                    os.setxattr(target, attr, data, follow_symlinks=False)
            except OSError as exc:
                if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP) or (symlink and exc.errno == errno.EPERM):
                    continue
                raise
        mode = member.mode & 0o7777
        if fd is not None:  # a file or directory (never a symlink)
            os.fchmod(fd, mode)
            return
        assert name is not None, "a member without an fd is named in parent_fd"
        if symlink:
            os.utime(name, ns=(_mtime_ns(member),) * 2, dir_fd=parent_fd, follow_symlinks=False)
            return
        # a device or FIFO: chmod through an O_PATH fd, never through a name that could be swapped
        path_fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
        try:
            if stat.S_ISLNK(os.fstat(path_fd).st_mode):
                raise _refuse(f"{member.name!r} turned into a symlink while unpacking")
            os.chmod(f"/proc/self/fd/{path_fd}", mode)
        finally:
            os.close(path_fd)
        os.utime(name, ns=(_mtime_ns(member),) * 2, dir_fd=parent_fd, follow_symlinks=False)

    def _set_dir_times(self) -> None:
        """Directory mtimes last, since creating children changed them."""
        for parts, mtime in reversed(self.dir_times):
            try:
                if not parts:
                    fd = open_dir_in_root(self.root_fd, self.base, create=False)
                    try:
                        os.utime(fd, ns=(mtime, mtime))
                    finally:
                        os.close(fd)
                    continue
                parent_fd = self._parent(parts[:-1], create=False)
                os.utime(parts[-1], ns=(mtime, mtime), dir_fd=parent_fd, follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError):
                continue  # removed by a later entry


def _copy(source, fd: int, size: int) -> None:
    """Copy ``size`` bytes of the tar stream into ``fd`` in large pieces."""
    remaining = size
    while remaining > 0:
        chunk = source.read(min(COPY_BUFFER, remaining))
        if not chunk:
            raise tarfile.ReadError("unexpected end of data")
        view = memoryview(chunk)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        remaining -= len(chunk)


def _lstat(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _is_whiteout(info: os.stat_result) -> bool:
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == 0


def _mtime_ns(member: tarfile.TarInfo) -> int:
    try:
        value = int(float(member.mtime) * 1_000_000_000)
    except (OverflowError, ValueError):
        return 0
    return min(max(value, 0), (1 << 63) - 1)


def _short(name: str, limit: int = 120) -> str:
    """A name cut for an error line, keeping both ends (the end says which file)."""
    return name if len(name) <= limit else name[: limit // 2] + "..." + name[-(limit // 2):]


def _refuse(reason: str) -> HostileArchive:
    return HostileArchive(f"refusing archive: {reason}")


def _os_error(name: str, exc: OSError) -> DockerbankError:
    shown = _short(name)
    if exc.errno == errno.ENAMETOOLONG:
        return _refuse(f"entry {shown!r} has a name too long for the filesystem")
    if exc.errno == errno.ELOOP:
        return _refuse(f"entry {shown!r} goes through too many symbolic links")
    if exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR, errno.ENOTEMPTY):
        return CorruptData(f"cannot unpack entry {shown!r}: {exc.strerror} (inconsistent archive)")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DockerbankError(f"cannot unpack entry {shown!r}: no space left on device")
    return DockerbankError(f"cannot unpack entry {shown!r}: {exc.strerror or exc}")
