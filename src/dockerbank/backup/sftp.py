"""A backup repository on another server over SFTP (``--repo sftp://[user@]host[:port]/path``).

The transport is the host's OpenSSH: one ``ssh -s sftp`` process per repository, so the
user's keys, agent, ``~/.ssh/config`` and ``known_hosts`` apply, and host keys are checked
(``BatchMode=yes``, ``StrictHostKeyChecking=yes``: an unknown or changed host key is refused,
never accepted silently). ``DOCKERBANK_SSH_COMMAND`` replaces ``ssh`` (as ``GIT_SSH_COMMAND``
does for git), e.g. to name an identity file. This module speaks SFTP version 3 (the draft
every OpenSSH server implements) over that process's pipes, plus OpenSSH's
``posix-rename@openssh.com`` (atomic replace) and ``fsync@openssh.com`` extensions.

The layout on the server is the one of a directory repository (``repo.json``,
``chunks/<2 hex>/<id>``, ``snapshots/<id>.json``, ``keys/<id>``); every object is written to
``tmp/``, fsynced and renamed into place, so a manifest never names a chunk that is not whole.
The path is absolute; ``sftp://host/~/backups`` is relative to the login directory.
There are no locks over SFTP: do not prune while a backup writes to the same repository.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import struct
import subprocess
import threading
from collections.abc import Iterable
from pathlib import Path

from dockerbank.backup.storage import Backend, DirBackend
from dockerbank.errors import CorruptData, InvalidArgument, NotFound, Offline

# packet types and flags of draft-ietf-secsh-filexfer-02 (SFTP version 3)
INIT, VERSION, OPEN, CLOSE, READ, WRITE, FSTAT = 1, 2, 3, 4, 5, 6, 8
OPENDIR, READDIR, REMOVE, MKDIR, STAT, EXTENDED = 11, 12, 13, 14, 17, 200
STATUS, HANDLE, DATA, NAME, ATTRS = 101, 102, 103, 104, 105
FX_OK, FX_EOF, FX_NO_SUCH_FILE = 0, 1, 2
READ_FLAG, WRITE_FLAG, CREAT, TRUNC, EXCL = 0x1, 0x2, 0x8, 0x10, 0x20
ATTR_SIZE, ATTR_UIDGID, ATTR_PERMISSIONS, ATTR_ACMODTIME, ATTR_EXTENDED = 0x1, 0x2, 0x4, 0x8, 0x80000000
BLOCK = 64 << 10           # bytes per READ/WRITE request (OpenSSH accepts up to 256 KiB messages)

_URL = re.compile(r"^sftp://(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]]+\]|[^:/]+)(?::(?P<port>\d+))?(?P<path>/.*)$")


def parse_url(url: str) -> tuple[str | None, str, int | None, str]:
    """(user, host, port, path) of ``sftp://[user@]host[:port]/path``."""
    match = _URL.match(url)
    if not match or match["path"].strip("/") in ("", "~"):
        raise InvalidArgument(f"invalid repository URL {url!r}: use sftp://[USER@]HOST[:PORT]/PATH")
    path = match["path"]
    if path.startswith("/~/"):
        path = path[3:]
    return match["user"], match["host"].strip("[]"), int(match["port"]) if match["port"] else None, path.rstrip("/")


class SftpError(Offline):
    """The SFTP server refused an operation or the connection broke."""


def _string(data: bytes | memoryview | str) -> bytes:
    raw = data.encode() if isinstance(data, str) else data
    return struct.pack(">I", len(raw)) + raw


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def u32(self) -> int:
        value = struct.unpack_from(">I", self.data, self.pos)[0]
        self.pos += 4
        return value

    def u64(self) -> int:
        value = struct.unpack_from(">Q", self.data, self.pos)[0]
        self.pos += 8
        return value

    def string(self) -> bytes:
        size = self.u32()
        value = self.data[self.pos:self.pos + size]
        self.pos += size
        return value

    def attrs(self) -> dict:
        flags = self.u32()
        out: dict = {}
        if flags & ATTR_SIZE:
            out["size"] = self.u64()
        if flags & ATTR_UIDGID:
            out["uid"], out["gid"] = self.u32(), self.u32()
        if flags & ATTR_PERMISSIONS:
            out["mode"] = self.u32()
        if flags & ATTR_ACMODTIME:
            out["atime"], out["mtime"] = self.u32(), self.u32()
        if flags & ATTR_EXTENDED:
            for _ in range(self.u32()):
                self.string()
                self.string()
        return out


class SftpClient:
    """SFTP v3 over an ``ssh -s sftp`` process; one request/response exchange at a time
    (a lock), with READ/WRITE requests of one file pipelined."""

    def __init__(self, argv: list[str], label: str):
        self.label = label
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE)
        except OSError as exc:
            raise Offline(f"{label}: cannot run {argv[0]}: {exc.strerror}") from exc
        stdin, stdout, stderr = self.proc.stdin, self.proc.stdout, self.proc.stderr
        assert stdin is not None and stdout is not None and stderr is not None, "all three are pipes"
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.lock = threading.Lock()
        self.next_id = 0
        self.extensions: dict[bytes, bytes] = {}
        with self.lock:
            self._send(INIT, struct.pack(">I", 3), with_id=False)
            kind, body = self._receive()
            if kind != VERSION:
                raise SftpError(f"{label}: the server does not speak SFTP")
            reader = _Reader(body)
            reader.u32()
            while reader.pos < len(body):
                name = reader.string()
                self.extensions[name] = reader.string()

    # --- framing --------------------------------------------------------------------------

    def _broken(self) -> SftpError:
        try:
            self.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
            err = self.stderr.read().decode(errors="replace").strip().splitlines()
        except (subprocess.TimeoutExpired, OSError, ValueError):
            err = []
        reason = err[-1] if err else f"ssh exited {self.proc.returncode}"
        return SftpError(f"{self.label}: {reason}")

    def _send(self, kind: int, payload: bytes, with_id: bool = True) -> int:
        request_id = 0
        if with_id:
            self.next_id = (self.next_id + 1) & 0xFFFFFFFF
            request_id = self.next_id
            payload = struct.pack(">I", request_id) + payload
        try:
            self.stdin.write(struct.pack(">IB", len(payload) + 1, kind) + payload)
        except (BrokenPipeError, ValueError, OSError):
            raise self._broken() from None
        return request_id

    def _flush(self) -> None:
        try:
            self.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            raise self._broken() from None

    def _receive(self) -> tuple[int, bytes]:
        self._flush()
        head = self.stdout.read(5)
        if len(head) < 5:
            raise self._broken()
        size, kind = struct.unpack(">IB", head)
        body = self.stdout.read(size - 1)
        if len(body) < size - 1:
            raise self._broken()
        return kind, body

    def _response(self, path: str) -> tuple[int, _Reader]:
        kind, body = self._receive()
        reader = _Reader(body)
        reader.u32()   # request id: responses come in request order from OpenSSH's server
        if kind == STATUS:
            code = reader.u32()
            if code not in (FX_OK, FX_EOF):
                message = reader.string().decode(errors="replace")
                if code == FX_NO_SUCH_FILE:
                    raise NotFound(f"{path}: no such file on {self.label}")
                raise SftpError(f"{self.label}: {path}: {message or f'SFTP status {code}'}")
            return (STATUS if code == FX_OK else -FX_EOF), reader
        return kind, reader

    def _call(self, kind: int, payload: bytes, path: str) -> tuple[int, _Reader]:
        self._send(kind, payload)
        return self._response(path)

    # --- operations (each under the lock) -------------------------------------------------

    def write_file(self, path: str, data: bytes, fsync: bool) -> None:
        with self.lock:
            kind, reader = self._call(OPEN, _string(path) + struct.pack(">II", WRITE_FLAG | CREAT | TRUNC,
                                                                            ATTR_PERMISSIONS) +
                                      struct.pack(">I", 0o600), path)
            handle = reader.string()
            view = memoryview(data)
            count = 0
            for offset in range(0, len(data), BLOCK):
                self._send(WRITE, _string(handle) + struct.pack(">Q", offset) + _string(view[offset:offset + BLOCK]))
                count += 1
            if fsync and b"fsync@openssh.com" in self.extensions:
                self._send(EXTENDED, _string("fsync@openssh.com") + _string(handle))
                count += 1
            self._send(CLOSE, _string(handle))
            failure = None
            for _ in range(count + 1):
                try:
                    self._response(path)
                except (SftpError, NotFound) as exc:   # read every response before raising
                    failure = failure or exc
            if failure:
                raise failure

    def read_file(self, path: str) -> bytes:
        with self.lock:
            _, reader = self._call(OPEN, _string(path) + struct.pack(">II", READ_FLAG, 0), path)
            handle = reader.string()
            _, reader = self._call(FSTAT, _string(handle), path)
            size = reader.attrs().get("size", 0)
            offsets = list(range(0, size, BLOCK)) or [0]
            for offset in offsets:
                self._send(READ, _string(handle) + struct.pack(">QI", offset, BLOCK))
            pieces = []
            failure = None
            for _ in offsets:
                try:
                    kind, reader = self._response(path)
                    if kind == DATA:
                        pieces.append(reader.string())
                except (SftpError, NotFound) as exc:
                    failure = failure or exc
            self._call(CLOSE, _string(handle), path)
            if failure:
                raise failure
            data = b"".join(pieces)
            if len(data) != size:
                raise CorruptData(f"{self.label}: {path} changed while it was read")
            return data

    def stat(self, path: str) -> dict | None:
        with self.lock:
            try:
                _, reader = self._call(STAT, _string(path), path)
            except NotFound:
                return None
            return reader.attrs()

    def listdir(self, path: str) -> list[str]:
        with self.lock:
            try:
                _, reader = self._call(OPENDIR, _string(path), path)
            except NotFound:
                return []
            handle = reader.string()
            names = []
            while True:
                kind, reader = self._call(READDIR, _string(handle), path)
                if kind != NAME:
                    break
                for _ in range(reader.u32()):
                    name = reader.string().decode()
                    reader.string()
                    reader.attrs()
                    if name not in (".", ".."):
                        names.append(name)
            self._call(CLOSE, _string(handle), path)
            return names

    def remove(self, path: str) -> None:
        with self.lock:
            try:
                self._call(REMOVE, _string(path), path)
            except NotFound:
                pass

    def mkdir(self, path: str) -> None:
        with self.lock:
            try:
                self._call(MKDIR, _string(path) + struct.pack(">II", ATTR_PERMISSIONS, 0o700), path)
            except SftpError:
                pass   # it exists (SFTP v3 says only "failure"); a real problem shows at the write

    def rename(self, old: str, new: str) -> None:
        if b"posix-rename@openssh.com" not in self.extensions:
            raise SftpError(f"{self.label}: the server lacks posix-rename@openssh.com (atomic replace)")
        with self.lock:
            self._call(EXTENDED, _string("posix-rename@openssh.com") + _string(old) + _string(new), new)

    def close(self) -> None:
        try:
            self.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def ssh_argv(user: str | None, host: str, port: int | None) -> list[str]:
    """``ssh`` (or ``$DOCKERBANK_SSH_COMMAND``) starting the server's sftp subsystem, host keys checked."""
    base = shlex.split(os.environ.get("DOCKERBANK_SSH_COMMAND") or "ssh")
    argv = [*base, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ServerAliveInterval=15"]
    if port:
        argv += ["-p", str(port)]
    return [*argv, "-s", "--", f"{user}@{host}" if user else host, "sftp"]


class SftpBackend(Backend):
    """Objects of a directory repository on an SFTP server."""

    def __init__(self, url: str, client_factory=None):
        user, host, port, path = parse_url(url)
        self.url = url
        self.root = path
        self._factory = client_factory or (lambda: SftpClient(ssh_argv(user, host, port), url))
        self._client: SftpClient | None = None
        self._open_lock = threading.Lock()
        self._made: set[str] = set()
        self._layout = DirBackend(Path("/"))   # the name -> relative path mapping of a directory repository

    @property
    def client(self) -> SftpClient:
        with self._open_lock:
            if self._client is None:
                self._client = self._factory()
            return self._client

    def _path(self, name: str) -> str:
        rel = str(self._layout.file(name)).lstrip("/")
        return f"{self.root}/{rel}" if self.root else rel

    def _ensure_dir(self, directory: str) -> None:
        if directory in self._made:
            return
        parts = directory.split("/")
        for depth in range(1, len(parts) + 1):
            sub = "/".join(parts[:depth])
            if sub and sub not in self._made:
                if self.client.stat(sub) is None:
                    self.client.mkdir(sub)
                self._made.add(sub)

    def put(self, name: str, data: bytes, *, refs: Iterable[str] = (), durable: bool = True) -> None:
        target = self._path(name)
        tmp_dir = f"{self.root}/tmp" if self.root else "tmp"
        self._ensure_dir(tmp_dir)
        self._ensure_dir(target.rsplit("/", 1)[0])
        tmp = f"{tmp_dir}/{target.rsplit('/', 1)[1]}.{secrets.token_hex(4)}"
        # every object fsynced: there is no syncfs over SFTP to do it once before the manifest
        self.client.write_file(tmp, data, fsync=True)
        self.client.rename(tmp, target)

    def get(self, name: str) -> bytes:
        try:
            return self.client.read_file(self._path(name))
        except NotFound:
            raise NotFound(f"{name} is missing from the repository {self.url}") from None

    def exists(self, name: str) -> bool:
        return self.client.stat(self._path(name)) is not None

    def size(self, name: str) -> int:
        found = self.client.stat(self._path(name))
        return int(found.get("size", 0)) if found else 0

    def list(self, prefix: str) -> list[str]:
        kind = prefix.rstrip("/")
        base = f"{self.root}/{kind}" if self.root else kind
        if kind == "chunks":
            return [f"chunks/{name}" for sub in self.client.listdir(base) for name in self.client.listdir(f"{base}/{sub}")]
        if kind == "snapshots":
            return [f"snapshots/{n[:-5]}" for n in self.client.listdir(base) if n.endswith(".json")]
        return [f"{kind}/{n}" for n in self.client.listdir(base)]

    def delete(self, name: str) -> None:
        self.client.remove(self._path(name))

    def cleanup(self) -> None:
        tmp = f"{self.root}/tmp" if self.root else "tmp"
        for name in self.client.listdir(tmp):
            self.client.remove(f"{tmp}/{name}")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


__all__ = ["SftpBackend", "SftpClient", "parse_url", "ssh_argv"]
