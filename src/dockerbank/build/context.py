"""The build context: a directory or a tar on stdin, its .dockerignore, and the Dockerfile.

A tar context is unpacked with the image unpacker (``image/unpack.py``), which refuses
entries that would escape the destination. The Dockerfile and .dockerignore are read even
when .dockerignore excludes them, but then COPY cannot see them (moby's removeDockerfile).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from dockerbank.build.dockerignore import ContextEntry, PatternMatcher, read_patterns, walk_context
from dockerbank.errors import InvalidArgument, NotFound

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import BinaryIO

DEFAULT_DOCKERFILE = "Dockerfile"


@dataclass
class BuildContext:
    """Files a build may COPY (``root`` minus what .dockerignore excludes) and its Dockerfile text."""

    root: Path | None                     # None: no context (Dockerfile alone on stdin)
    dockerfile: str
    dockerfile_name: str = DEFAULT_DOCKERFILE
    patterns: list[str] = field(default_factory=list)
    temp_dir: Path | None = None
    _entries: dict[str, ContextEntry] | None = None

    def entries(self) -> dict[str, ContextEntry]:
        """Included context entries by relative path (computed once)."""
        if self._entries is None:
            if self.root is None:
                self._entries = {}
            else:
                found = {e.path: e for e in walk_context(self.root, self.patterns)}
                matcher = PatternMatcher(self.patterns)
                for hidden in (".dockerignore", self.dockerfile_name):
                    if hidden in found and matcher.excluded(hidden):
                        del found[hidden]
                self._entries = found
        return self._entries

    def size(self) -> int:
        return sum(e.stat.st_size for e in self.entries().values() if stat.S_ISREG(e.stat.st_mode))

    def host_path(self, rel: str) -> Path:
        if self.root is None:
            raise NotFound("no build context: the Dockerfile came from stdin without a context")
        return self.root / rel

    def close(self) -> None:
        if self.temp_dir is not None and self.temp_dir.exists():
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.temp_dir = None

    def __enter__(self) -> "BuildContext":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _read_ignore(root: Path | None) -> list[str]:
    if root is None:
        return []
    path = root / ".dockerignore"
    if not path.is_file():
        return []
    return read_patterns(path.read_text(errors="replace"))


def from_directory(directory: str | os.PathLike, dockerfile: str | None = None,
                   dockerfile_text: str | None = None) -> BuildContext:
    """A context directory; ``dockerfile`` is a path (relative to the current directory, as in Docker)."""
    root = Path(directory)
    if not root.is_dir():
        raise NotFound(f'unable to prepare context: path "{directory}" not found')
    root = root.resolve()
    if dockerfile_text is not None:
        return BuildContext(root, dockerfile_text, DEFAULT_DOCKERFILE, _read_ignore(root))
    path = Path(dockerfile) if dockerfile else root / DEFAULT_DOCKERFILE
    if not dockerfile and not path.exists() and (root / "dockerfile").exists():
        path = root / "dockerfile"
    if not path.is_file():
        raise NotFound(f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {path}: no such file or directory")
    try:
        rel = os.path.relpath(path.resolve(), root)
    except ValueError:
        rel = DEFAULT_DOCKERFILE
    rel = rel if not rel.startswith("..") else DEFAULT_DOCKERFILE
    return BuildContext(root, _read_text(path), posixpath.normpath(rel.replace(os.sep, "/")), _read_ignore(root))


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise InvalidArgument(f"cannot read Dockerfile {path}: {exc.strerror}") from exc


def from_stdin(stream: BinaryIO, tmp_dir: Path, dockerfile: str | None = None,
               dockerfile_text: str | None = None) -> BuildContext:
    """``build -``: stdin holds a (possibly compressed) tar context, or just a Dockerfile."""
    from dockerbank.image import compression
    from dockerbank.image.unpack import extract_into

    tmp_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="build-context-", dir=tmp_dir))
    try:
        data_path = work / "stdin"
        with open(data_path, "wb") as handle:
            shutil.copyfileobj(stream, handle, 1 << 20)
        if not _looks_like_archive(data_path):
            if dockerfile_text is not None:
                raise InvalidArgument("invalid argument: can't use stdin for both build context and dockerfile")
            text = _read_text(data_path)
            return BuildContext(None, text, DEFAULT_DOCKERFILE, [], work)
        root = work / "context"
        root.mkdir()
        with open(data_path, "rb") as handle:
            reader, _ = compression.open_decompressed(handle)
            extract_into(reader, root, "/")
        data_path.unlink()
        if dockerfile_text is None:
            name = posixpath.normpath(dockerfile or DEFAULT_DOCKERFILE).lstrip("/")
            path = root / name
            if not path.is_file():
                raise NotFound(f"Cannot locate specified Dockerfile: {name}")
            dockerfile_text = _read_text(path)
        else:
            name = DEFAULT_DOCKERFILE
        return BuildContext(root, dockerfile_text, name, _read_ignore(root), work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _looks_like_archive(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(512)
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00" or head[:4] == b"\x28\xb5\x2f\xfd":
        return True
    return len(head) >= 262 and head[257:262] == b"ustar"
