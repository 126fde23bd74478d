"""Capture a directory tree as a tar stream and put it back, keeping what a backup must keep.

A volume's tar is written by GNU tar in POSIX (pax) format (``tar_stream``): numeric owners,
modes, nanosecond mtimes, every xattr as ``SCHILY.xattr.*``, hard links, devices, FIFOs,
symlinks never followed, names sorted. It runs as its own process, so reading the files
overlaps with the chunking, hashing and compression in this one (Python's tarfile, which
``image.pack.pack_dir`` uses, managed ~175 MB/s and held the GIL). Headers carry nothing that
changes without the file changing (no atime/ctime, no PID in pax header names), so an
unchanged file gives the same bytes and chunks. An overlay upper dir (a container's top
layer) still goes through ``pack_dir``, which turns whiteouts into ``.wh.`` entries. Both
are read back by ``image.unpack`` (every path resolved inside the destination).

Sparse files: the tar holds their holes as zeros (zstd compresses them to almost nothing). The hole map of each sparse file is found with ``SEEK_DATA``/``SEEK_HOLE`` while
capturing and stored in the part's metadata; the restore punches the same holes again
(``fallocate(PUNCH_HOLE)``), so a restored file has the same size, content and holes.
The root directory of the tree is not a tar entry: its owner, mode and xattrs go into the
metadata too.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import io
import os
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dockerbank.errors import DockerbankError

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import BinaryIO

    from dockerbank.streams import Reader

_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_F_SETPIPE_SZ = 1031
_PIPE_SIZE = 1 << 20        # fewer, larger reads from tar's pipe

# GNU tar (1.28+ for --sort). The pax header names and the absence of atime/ctime keep the
# stream of an unchanged file byte-identical between backups (deduplication).
TAR_CREATE = ("tar", "--create", "--file=-", "--format=posix", "--numeric-owner", "--sort=name",
              "--xattrs", "--xattrs-include=*", "--xattrs-exclude=security.selinux",
              "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
              "--warning=no-file-ignored", "--warning=no-file-changed")


def hole_map(fd: int, size: int) -> list[list[int]]:
    """The holes of an open file as [[offset, length], ...] (SEEK_HOLE/SEEK_DATA)."""
    holes = []
    pos = 0
    while pos < size:
        try:
            hole = os.lseek(fd, pos, os.SEEK_HOLE)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.ENXIO):
                break
            raise
        if hole >= size:
            break
        try:
            data = os.lseek(fd, hole, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: a hole up to the end of the file
                raise
            data = size
        holes.append([hole, data - hole])
        pos = data
    return holes


def scan(src: Path) -> tuple[str, int, dict[str, list[list[int]]]]:
    """One walk of ``src``: a signature of every entry's stat (path, inode, type and mode, owner,
    size, mtime, ctime, link count), the bytes of its regular files, and its sparse files' hole
    maps. Equal signatures mean an unchanged tree: any change of content, metadata, xattrs or
    links moves a ctime, which nobody can set back. Taken before the tree is read."""
    import hashlib

    digest = hashlib.sha256()
    total = 0
    sparse: dict[str, list[list[int]]] = {}   # found in the same walk (one pass over the tree)
    st = os.lstat(src)
    digest.update(f".\0{st.st_ino}\0{st.st_mode}\0{st.st_uid}\0{st.st_gid}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\n"
                  .encode())
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            rel = os.path.relpath(path, src)
            digest.update(os.fsencode(rel) + f"\0{st.st_ino}\0{st.st_mode}\0{st.st_uid}\0{st.st_gid}\0{st.st_size}"
                          f"\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_nlink}\n".encode())
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
                if st.st_blocks * 512 < st.st_size:
                    holes = _holes_of(path, st.st_size)
                    if holes:
                        sparse[rel] = holes
    return digest.hexdigest(), total, sparse


def _holes_of(path: str, size: int) -> list[list[int]]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return []
    try:
        return hole_map(fd, size)
    finally:
        os.close(fd)


def root_meta(src: Path) -> dict:
    """Owner, mode and xattrs of the tree's root directory (not part of the tar)."""
    from dockerbank.image.pack import _xattrs

    st = os.stat(src)
    xattrs = {k: v.hex() for k, v in _xattrs(str(src)).items() if not k.startswith("trusted.overlay.")}
    return {"uid": st.st_uid, "gid": st.st_gid, "mode": stat.S_IMODE(st.st_mode), "xattrs": xattrs,
            "mtime_ns": st.st_mtime_ns}


def capture(src: Path, out: BinaryIO, *, overlay_upper: bool = False) -> int:
    """Write ``src``'s tree as tar to ``out``; returns the bytes written."""
    from dockerbank.image.pack import pack_dir

    return pack_dir(src, out, overlay_upper=overlay_upper)


def tar_command(src: Path) -> list[str]:
    """The GNU tar command line that writes ``src``'s tree (root as ``./``) to stdout. Pure."""
    return [*TAR_CREATE, "--directory", str(src), "."]


@contextmanager
def tar_stream(src: Path) -> Iterator[io.FileIO]:
    """A readable tar stream of ``src``'s tree, written by GNU tar in its own process.

    Exit status 1 (a file changed or vanished while read: only with ``--consistency none``)
    is accepted as pack_dir accepted it; anything worse raises with tar's own message."""
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: tar never blocks on its messages
        proc = subprocess.Popen(tar_command(src), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=errors, bufsize=0)
        stdout = proc.stdout
        assert isinstance(stdout, io.FileIO), "bufsize=0: the pipe is an unbuffered FileIO"
        try:
            try:
                fcntl.fcntl(stdout.fileno(), _F_SETPIPE_SZ, _PIPE_SIZE)
            except OSError:
                pass  # above /proc/sys/fs/pipe-max-size: the default pipe works, in smaller reads
            yield stdout
            while stdout.read(1 << 20):
                pass  # the reader stopped before the end: let tar finish
        except BaseException:
            proc.kill()
            raise
        finally:
            stdout.close()
            status = proc.wait()
        if status not in (0, 1):
            errors.seek(0)
            err = errors.read().decode(errors="replace").strip()
            last = err.splitlines()[-1] if err else f"exit status {status}"
            raise DockerbankError(f"cannot read {src}: {last}")


def restore_tree(stream: Reader, dest: Path, meta: dict) -> int:
    """Extract a captured tree into the existing directory ``dest``, then its root's metadata
    and its sparse files' holes. Returns the bytes of file data written."""
    from dockerbank.image.unpack import extract_into

    written = extract_into(stream, dest, "/", no_overwrite_dir_non_dir=False)
    _drain(stream)
    punch_holes(dest, meta.get("sparse") or {})
    root = meta.get("root")
    if root:
        os.chown(dest, root["uid"], root["gid"])
        os.chmod(dest, root["mode"])
        for key, value in (root.get("xattrs") or {}).items():
            try:
                os.setxattr(dest, key, bytes.fromhex(value))
            except OSError as exc:
                if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise
        os.utime(dest, ns=(root["mtime_ns"], root["mtime_ns"]))
    return written


def restore_layer(stream: Reader, dest: Path) -> int:
    """Extract a captured overlay upper dir (whiteouts as ``.wh.`` entries) into ``dest``."""
    from dockerbank.image.unpack import unpack_layer

    written = unpack_layer(stream, dest)
    _drain(stream)
    return written


def _drain(stream: Reader) -> None:
    """Read the tar's trailing padding, so a PartReader checks the part's whole sha256."""
    while stream.read(1 << 20):
        pass


def punch_holes(dest: Path, sparse: dict[str, list[list[int]]]) -> None:
    """Punch the recorded holes into restored files (paths resolved inside ``dest``)."""
    if not sparse:
        return
    from dockerbank.host.fs import scoped_path

    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    for rel, holes in sparse.items():
        path = scoped_path(dest, rel)
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise DockerbankError(f"cannot make {rel} sparse again: {exc.strerror}") from exc
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                continue
            for offset, length in holes:
                if libc.fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length) != 0:
                    err = ctypes.get_errno()
                    if err in (errno.EOPNOTSUPP, errno.ENOSYS):
                        break  # the filesystem cannot hold holes: the file stays dense, same content
                    raise DockerbankError(f"cannot punch a hole into {rel}: {os.strerror(err)}")
            os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))  # punching changed the mtime
        finally:
            os.close(fd)
