"""Where a backup repository keeps its objects: a storage backend of named objects.

The repository logic (chunking, encryption, manifests, GC) sees only these operations:
``put``/``get``/``exists``/``list``/``delete`` of named objects, ``sync`` (make what was put
durable before a manifest names it) and ``lock``. Object names:

    config              the repository's parameters (plain JSON: chunker, hash, encryption)
    keys/<id>           a key file (the master key wrapped by one passphrase)
    chunks/<id>         a chunk (zstd, encrypted if the repository is)
    snapshots/<id>      a snapshot manifest (JSON, encrypted if the repository is)

``put`` of a snapshot names the chunks it references (``refs``): a registry must know them
so its garbage collection keeps them. Backends: a directory (``DIR`` or ``dir:DIR``, the
layout of the first version: ``repo.json``, ``chunks/<2 hex>/<id>``, ``snapshots/<id>.json``),
a registry (``oci://registry/name``, in ``backup.oci``), an SFTP server through OpenSSH
(``sftp://[user@]host[:port]/path``, in ``backup.sftp``).
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from dockerbank import faults
from dockerbank.errors import InvalidArgument, NotFound
from dockerbank.host.permissions import private_dir


class Backend:
    """The interface; see the module docstring. ``url`` names the repository in messages."""

    url = ""
    local_path: Path | None = None   # the directory, for a local backend

    def put(self, name: str, data: bytes, *, refs: Iterable[str] = (), durable: bool = True) -> None:
        raise NotImplementedError

    def get(self, name: str) -> bytes:
        raise NotImplementedError

    def exists(self, name: str) -> bool:
        raise NotImplementedError

    def list(self, prefix: str) -> list[str]:
        """Names of the objects under ``prefix`` (``chunks/``, ``snapshots/``, ``keys/``)."""
        raise NotImplementedError

    def delete(self, name: str) -> None:
        raise NotImplementedError

    def size(self, name: str) -> int:
        return len(self.get(name))

    def sync(self) -> None:
        """Make every object put so far durable (before a manifest that names them is put)."""

    @contextmanager
    def lock(self, exclusive: bool) -> Iterator[None]:
        yield

    def cleanup(self) -> None:
        """Remove leftovers of interrupted writes."""

    def close(self) -> None:
        pass


def _syncfs(path: Path) -> None:
    """Flush the repository's filesystem (chunks must be durable before a manifest names them)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


class DirBackend(Backend):
    """A directory: every object a file, written to ``tmp/`` and renamed into place."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.local_path = self.path
        self.url = str(self.path)

    def file(self, name: str) -> Path:
        kind, _, rest = name.partition("/")
        if name == "config":
            return self.path / "repo.json"
        if kind == "chunks":
            return self.path / "chunks" / rest[:2] / rest
        if kind == "snapshots":
            return self.path / "snapshots" / f"{rest}.json"
        if kind == "keys":
            return self.path / "keys" / rest
        raise InvalidArgument(f"no such object kind: {name}")

    def put(self, name: str, data: bytes, *, refs: Iterable[str] = (), durable: bool = True) -> None:
        target = self.file(name)
        if name == "config":
            private_dir(self.path)   # a new repository is closed to other users of the host
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp_dir = self.path / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / f"{target.name}.{secrets.token_hex(4)}"
        with open(tmp, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        # two writers of one chunk write equivalent bytes: the last rename wins harmlessly
        faults.point(f"backup.{name.split('/')[0]}")
        os.replace(tmp, target)
        if durable:
            dfd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def get(self, name: str) -> bytes:
        try:
            return self.file(name).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"{name} is missing from the repository {self.url}") from exc

    def exists(self, name: str) -> bool:
        return self.file(name).exists()

    def size(self, name: str) -> int:
        return self.file(name).stat().st_size

    def list(self, prefix: str) -> list[str]:
        kind = prefix.rstrip("/")
        base = self.path / kind
        if not base.is_dir():
            return []
        if kind == "chunks":
            return [f"chunks/{p.name}" for sub in base.iterdir() if sub.is_dir() for p in sub.iterdir()]
        if kind == "snapshots":
            return [f"snapshots/{p.name[:-5]}" for p in base.glob("*.json")]
        return [f"{kind}/{p.name}" for p in base.iterdir() if p.is_file()]

    def delete(self, name: str) -> None:
        try:
            self.file(name).unlink()
        except FileNotFoundError:
            pass

    def sync(self) -> None:
        _syncfs(self.path)

    @contextmanager
    def lock(self, exclusive: bool) -> Iterator[None]:
        """Writers of snapshots share the lock; chunk GC (rm, prune) holds it alone."""
        private_dir(self.path)
        fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
            except BlockingIOError:
                fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    def cleanup(self) -> None:
        tmp = self.path / "tmp"
        if tmp.is_dir():
            for stale in tmp.glob("*"):
                if stale.is_file():
                    stale.unlink()


def open_backend(url: str | Path, *, registry=None) -> Backend:
    """The backend a ``--repo`` value names: ``oci://registry/name``, ``dir:PATH`` or a path.

    ``registry`` (the engine's RegistryService) gives an ``oci://`` backend its transport:
    the same TLS rules and stored credentials as ``pull``/``push``.
    """
    text = str(url)
    if text.startswith("oci://"):
        if registry is None:
            raise InvalidArgument(f"{text}: an oci:// repository needs the engine's registry client")
        from dockerbank.backup.oci import OciBackend

        return OciBackend.from_url(text, registry)
    if text.startswith("sftp://"):
        from dockerbank.backup.sftp import SftpBackend

        return SftpBackend(text)
    if text.startswith("dir:"):
        text = text[4:]
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise InvalidArgument(f"unsupported repository URL scheme {scheme}:// (use a path, dir:PATH, oci:// or sftp://)")
    if not text:
        raise InvalidArgument("empty repository path")
    return DirBackend(Path(text))


__all__ = ["Backend", "DirBackend", "open_backend"]
