"""COPY/ADD: resolve sources (context or an image), apply Docker's destination rules, stage a layer.

Sources are collected as ``CopyItem``s first (pure data: where each entry lands, its kind,
mode, owner, content). Their digest is the step's cache input; only on a cache miss are
they written into a staging directory that ``image/pack.py`` turns into the layer tar.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from dockerbank.build.context import BuildContext
from dockerbank.build.plan import FileRecord
from dockerbank.build.rootfs import MergedView
from dockerbank.errors import InvalidArgument, NotFound, Offline

_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass
class CopyItem:
    """One entry a COPY/ADD writes into the image."""

    dest: str                  # path in the image, no leading slash
    kind: str                  # file, dir, symlink, archive (ADD: extract into dest), data (heredoc)
    mode: int                  # permission bits (incl. setuid etc.)
    uid: int
    gid: int
    source: Path | None = None
    link: str = ""
    data: bytes = b""
    mtime: float = 0.0

    def record(self, digest_of=None) -> FileRecord:
        """What the cache key sees of this entry; ``digest_of(path)`` may serve file digests from a cache."""
        if self.kind in ("file", "archive"):
            digest = (digest_of or file_digest)(self.source) if self.source else ""
        elif self.kind == "data":
            digest = "sha256:" + hashlib.sha256(self.data).hexdigest()
        else:
            digest = self.link
        return FileRecord(self.dest, self.kind, self.mode, self.uid, self.gid, digest)


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def glob_regex(pattern: str) -> re.Pattern:
    """Go's filepath.Match as a regex (``*`` and ``?`` never cross ``/``)."""
    out = ""
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                raise InvalidArgument(f"syntax error in pattern {pattern!r}")
            body = pattern[i + 1:end]
            if body[:1] in ("!", "^"):
                body = "^" + body[1:]
            out += "[" + body.replace("\\", "\\\\") + "]"
            i = end
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + r"\Z")


def clean_source(src: str) -> str:
    """A source path relative to its root; ``..`` cannot climb above it (Docker clamps it)."""
    return posixpath.normpath("/" + src).lstrip("/")


@dataclass
class Owner:
    uid: int
    gid: int


def parse_chown(value: str, view: MergedView | None) -> Owner:
    """``--chown=user[:group]`` with names looked up in the image's /etc/passwd and /etc/group."""
    user, _, group = value.partition(":")
    group = group or user
    uid = _lookup(user, view, "/etc/passwd", 2, "user")
    gid = _lookup(group, view, "/etc/group", 2, "group")
    return Owner(uid, gid)


def _lookup(name: str, view: MergedView | None, path: str, field_index: int, what: str) -> int:
    if name.isdigit():
        return int(name)
    text = view.read_text(path) if view is not None else None
    for line in (text or "").splitlines():
        fields = line.split(":")
        if len(fields) > field_index and fields[0] == name:
            return int(fields[field_index])
    raise InvalidArgument(f"unable to convert uid/gid chown string to host mapping: no such {what}: {name}")


def parse_chmod(value: str) -> int:
    if not re.fullmatch(r"[0-7]{3,4}", value):
        raise InvalidArgument(f"invalid chmod parameter {value!r}: only octal modes are supported")
    return int(value, 8)


class Sources:
    """Where COPY reads from: the build context, or an image's merged filesystem (--from)."""

    def __init__(self, context: BuildContext | None = None, view: MergedView | None = None):
        self.context = context
        self.view = view

    @property
    def _context(self) -> BuildContext:
        """The build context, which every read without a view (no --from) goes to."""
        assert self.context is not None, "Sources without a view read the build context"
        return self.context

    def expand(self, src: str) -> list[str]:
        """Relative paths that ``src`` names (globs matched); raises NotFound if nothing matches."""
        rel = clean_source(src)
        if not _GLOB_CHARS.search(rel):
            if not self.exists(rel):
                where = "build context or excluded by .dockerignore" if self.view is None else "image"
                raise NotFound(f"COPY failed: file not found in {where}: stat {src}: file does not exist")
            return [rel]
        regex = glob_regex(rel)
        matches = sorted(p for p in self.all_paths(rel) if regex.match(p))
        if not matches:
            raise NotFound(f"COPY failed: no source files were specified (pattern {src} matched nothing)")
        return matches

    def exists(self, rel: str) -> bool:
        if rel == "":
            return True
        if self.view is not None:
            return self.view.lstat(self.view.resolve(rel)) is not None
        entries = self._context.entries()
        return rel in entries or any(p.startswith(rel + "/") for p in entries)

    def all_paths(self, pattern: str) -> list[str]:
        if self.view is None:
            return list(self._context.entries())
        depth = pattern.count("/")
        prefix_parts = []
        for part in pattern.split("/"):
            if _GLOB_CHARS.search(part):
                break
            prefix_parts.append(part)
        out = []
        stack = ["/".join(prefix_parts)]
        while stack:
            current = stack.pop()
            for name in self.view.listdir(current):
                child = f"{current}/{name}" if current else name
                out.append(child)
                if child.count("/") < depth and self.view.is_dir(child):
                    stack.append(child)
        return out

    def is_dir(self, rel: str) -> bool:
        if rel == "":
            return True
        if self.view is not None:
            return self.view.is_dir(rel)
        entry = self._context.entries().get(rel)
        if entry is not None:
            return stat.S_ISDIR(entry.stat.st_mode)
        return any(p.startswith(rel + "/") for p in self._context.entries())

    def walk(self, rel: str) -> list[tuple[str, os.stat_result, Path]]:
        """Entries below directory ``rel`` as (path relative to rel, lstat, host path)."""
        out = []
        if self.view is None:
            prefix = rel + "/" if rel else ""
            for path, entry in sorted(self._context.entries().items()):
                if path.startswith(prefix) and path != rel:
                    out.append((path[len(prefix):], entry.stat, self._context.host_path(path)))
            return out
        base = self.view.resolve(rel) if rel else ""
        stack = [""]
        while stack:
            sub = stack.pop()
            directory = f"{base}/{sub}".strip("/") if sub else base
            for name in self.view.listdir(directory):
                child_rel = f"{sub}/{name}" if sub else name
                host = self.view.locate(f"{directory}/{name}".strip("/"))
                if host is None:
                    continue
                st = os.lstat(host)
                out.append((child_rel, st, host))
                if stat.S_ISDIR(st.st_mode):
                    stack.append(child_rel)
        return sorted(out, key=lambda item: item[0])

    def entry(self, rel: str) -> tuple[os.stat_result, Path]:
        if self.view is not None:
            resolved = self.view.resolve(rel)
            host = self.view.locate(resolved)
            if host is None:
                raise NotFound(f"COPY failed: stat {rel}: file does not exist")
            return os.lstat(host), host
        host = self._context.host_path(rel)
        return os.lstat(host), host


def is_url(src: str) -> bool:
    return src.startswith(("http://", "https://", "git@")) or bool(re.match(r"^[a-z]+://", src))


def open_archive(path: Path):
    """``path`` opened decompressed (gzip, bzip2, xz or plain), as ADD reads local archives."""
    import bz2
    import gzip
    import lzma

    with open(path, "rb") as handle:
        head = handle.read(6)
    if head[:2] == b"\x1f\x8b":
        return gzip.open(path)
    if head[:3] == b"BZh":
        return bz2.open(path)
    if head[:6] == b"\xfd7zXZ\x00":
        return lzma.open(path)
    return open(path, "rb")


def is_archive(path: Path) -> bool:
    """Whether ADD would extract ``path``: a tar, possibly gzip/bzip2/xz-compressed."""
    import lzma

    try:
        with open_archive(path) as handle:
            block = handle.read(512)
    except (OSError, EOFError, lzma.LZMAError):
        return False
    return len(block) == 512 and block[257:262] == b"ustar"


def collect(keyword: str, srcs: list[str], dest: str, sources: Sources, *, owner: Owner | None,
            chmod: int | None, dest_is_dir, from_image: bool) -> list[CopyItem]:
    """Apply Docker's COPY/ADD rules: which entries land where, with which mode and owner.

    ``dest`` is absolute; ``dest_is_dir(path)`` tells whether it is a directory in the image.
    """
    for src in srcs:
        if is_url(src):
            if keyword == "COPY":
                raise InvalidArgument(f"COPY failed: source can't be a URL for COPY: {src}")
            raise Offline(f"ADD failed: downloading {src} is not supported offline: download it into the build context and ADD it by path")
    paths: list[str] = []
    for src in srcs:
        paths.extend(sources.expand(src))
    multiple = len(srcs) > 1 or any(_GLOB_CHARS.search(s) for s in srcs) and len(paths) > 1
    if multiple and not dest.endswith("/"):
        raise InvalidArgument(f"When using {keyword} with more than one source file, the destination must be a directory and end with a /")
    dest_dir = dest.endswith("/") or dest_is_dir(dest)
    dest_clean = posixpath.normpath(dest).lstrip("/")
    items: list[CopyItem] = []

    def ids(st: os.stat_result) -> tuple[int, int]:
        if owner is not None:
            return owner.uid, owner.gid
        return (st.st_uid, st.st_gid) if from_image else (0, 0)

    def item(dest_path: str, st: os.stat_result, host: Path) -> CopyItem:
        uid, gid = ids(st)
        mode = stat.S_IMODE(st.st_mode)
        if chmod is not None:
            mode = chmod
        if stat.S_ISDIR(st.st_mode):
            return CopyItem(dest_path, "dir", mode, uid, gid, host, mtime=st.st_mtime)
        if stat.S_ISLNK(st.st_mode):
            return CopyItem(dest_path, "symlink", stat.S_IMODE(st.st_mode), uid, gid, host, link=os.readlink(host), mtime=st.st_mtime)
        if stat.S_ISREG(st.st_mode):
            return CopyItem(dest_path, "file", mode, uid, gid, host, mtime=st.st_mtime)
        raise InvalidArgument(f"{keyword} failed: {host.name} is not a regular file, directory or symlink")

    for rel in paths:
        if sources.is_dir(rel):
            base = dest_clean
            for sub, st, host in sources.walk(rel):
                items.append(item(f"{base}/{sub}".lstrip("/"), st, host))
            # the destination directory itself: created (owned by --chown) if new
            items.insert(0, CopyItem(base, "dir", 0o755 if chmod is None else chmod,
                                     owner.uid if owner else 0, owner.gid if owner else 0, None))
            continue
        st, host = sources.entry(rel)
        if keyword == "ADD" and stat.S_ISREG(st.st_mode) and not from_image and is_archive(host):
            uid, gid = ids(st)
            items.append(CopyItem(dest_clean, "archive", 0o755, uid, gid, host))
            continue
        name = posixpath.basename(rel) or rel
        target = f"{dest_clean}/{name}".lstrip("/") if dest_dir else dest_clean
        items.append(item(target, st, host))
    return items


def heredoc_items(docs: list[tuple[str, str]], dest: str, owner: Owner | None, chmod: int | None,
                  dest_is_dir) -> list[CopyItem]:
    """``COPY <<EOF /dst``: each heredoc becomes a file named by its delimiter (or ``dest`` itself)."""
    dest_clean = posixpath.normpath(dest).lstrip("/")
    into_dir = dest.endswith("/") or dest_is_dir(dest) or len(docs) > 1
    items = []
    for name, content in docs:
        target = f"{dest_clean}/{name}".lstrip("/") if into_dir else dest_clean
        items.append(CopyItem(target, "data", 0o644 if chmod is None else chmod,
                              owner.uid if owner else 0, owner.gid if owner else 0, data=content.encode()))
    return items


def stage(items: list[CopyItem], staging: Path, view: MergedView, owner: Owner | None) -> None:
    """Write ``items`` into ``staging`` (the future layer), parents copied from the image's view."""
    from dockerbank.image.unpack import extract_into

    def ensure_parents(path: str, new_owner: Owner | None) -> None:
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            rel = "/".join(parts[:depth])
            target = staging / rel
            if target.exists():
                continue
            existing = view.lstat(rel)
            target.mkdir()
            if existing is not None and stat.S_ISDIR(existing.st_mode):
                os.chown(target, existing.st_uid, existing.st_gid)
                os.chmod(target, stat.S_IMODE(existing.st_mode))
                os.utime(target, ns=(existing.st_atime_ns, existing.st_mtime_ns))
            else:
                os.chown(target, new_owner.uid if new_owner else 0, new_owner.gid if new_owner else 0)
                os.chmod(target, 0o755)

    resolved_parents: dict[str, str] = {}

    def resolve(path: str, follow_last: bool) -> str:
        """The destination with symlinks in the image followed (``/bin -> usr/bin`` on Debian)."""
        if follow_last:
            return view.resolve(path)
        parent, _, name = path.rpartition("/")
        if not parent:
            return path
        if parent not in resolved_parents:
            resolved_parents[parent] = view.resolve(parent)
        base = resolved_parents[parent]
        return f"{base}/{name}" if base else name

    dir_times: list[tuple[Path, float]] = []
    for it in items:
        if it.dest:
            it.dest = resolve(it.dest, follow_last=it.kind in ("dir", "archive"))
        if not it.dest:
            if it.kind == "dir":
                continue
            raise InvalidArgument("cannot copy to the root path as a file")
        target = staging / it.dest
        ensure_parents(it.dest, owner if it.kind != "dir" else None)
        if it.kind == "dir":
            existing = view.lstat(it.dest)
            if not target.exists():
                target.mkdir()
                if existing is not None and stat.S_ISDIR(existing.st_mode) and it.source is None:
                    os.chown(target, existing.st_uid, existing.st_gid)
                    os.chmod(target, stat.S_IMODE(existing.st_mode))
                    continue
            os.chown(target, it.uid, it.gid)
            os.chmod(target, it.mode)
            if it.mtime:
                dir_times.append((target, it.mtime))
        elif it.kind == "symlink":
            _remove(target)
            os.symlink(it.link, target)
            os.lchown(target, it.uid, it.gid)
            os.utime(target, (it.mtime, it.mtime), follow_symlinks=False)
        elif it.kind == "file":
            assert it.source is not None, "a file item names its source"
            _remove(target)
            shutil.copyfile(it.source, target, follow_symlinks=False)
            os.chown(target, it.uid, it.gid)
            os.chmod(target, it.mode)
            os.utime(target, (it.mtime, it.mtime))
        elif it.kind == "data":
            _remove(target)
            target.write_bytes(it.data)
            os.chown(target, it.uid, it.gid)
            os.chmod(target, it.mode)
        elif it.kind == "archive":
            assert it.source is not None, "an archive item names its source"
            target.mkdir(exist_ok=True)
            with open_archive(it.source) as reader:
                extract_into(reader, staging, it.dest, owner=(owner.uid, owner.gid) if owner else None)
    for target, mtime in reversed(dir_times):
        os.utime(target, (mtime, mtime))


def _remove(target: Path) -> None:
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.is_dir():
        shutil.rmtree(target)
