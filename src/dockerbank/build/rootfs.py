"""A read-only merged view of an image's layer directories, without mounting.

COPY --from, WORKDIR and COPY's destination rules need to look at an image's filesystem.
Lookups walk the unpacked layer trees top-first and honour whiteouts in both forms a layer
directory may hold: overlay's (a 0/0 character device, the ``trusted.overlay.opaque`` xattr)
and the tar form (``.wh.<name>``, ``.wh..wh..opq``).
"""

from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: Path) -> bool:
    if (path / OPAQUE).exists():
        return True
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


class MergedView:
    """The union of layer directories (top first), as a container would see it."""

    def __init__(self, layer_dirs: list[Path]):
        self.layers = list(layer_dirs)

    def _clean(self, path: str) -> str:
        return posixpath.normpath("/" + path).lstrip("/")

    def locate(self, path: str) -> Path | None:
        """The host path that holds ``path`` (no symlink resolution), or None if absent."""
        rel = self._clean(path)
        if not rel:
            return self.layers[0] if self.layers else None
        parts = rel.split("/")
        for layer in self.layers:
            # a whiteout or opaque directory on the way hides everything below it in lower layers
            hidden = False
            opaque_above = False   # an opaque directory of this layer hides lower layers below it
            for depth in range(len(parts)):
                parent = layer.joinpath(*parts[:depth]) if depth else layer
                name = parts[depth]
                if (parent / (WHITEOUT_PREFIX + name)).exists():
                    return None
                opaque_above = opaque_above or (depth > 0 and _is_opaque(parent))
                candidate = parent / name
                try:
                    st = os.lstat(candidate)
                except OSError:
                    if opaque_above:
                        return None
                    hidden = True
                    break
                if _is_whiteout(st):
                    return None
                if depth < len(parts) - 1 and not stat.S_ISDIR(st.st_mode):
                    hidden = True
                    break
            if not hidden:
                return layer.joinpath(*parts)
        return None

    def lstat(self, path: str) -> os.stat_result | None:
        found = self.locate(path)
        return os.lstat(found) if found is not None else None

    def resolve(self, path: str, hops: int = 40) -> str:
        """``path`` with symlinks in it resolved inside the view (never above its root)."""
        parts = self._clean(path).split("/") if self._clean(path) else []
        done: list[str] = []
        while parts:
            part = parts.pop(0)
            current = "/".join(done + [part])
            found = self.locate(current)
            if found is not None and os.path.islink(found):
                hops -= 1
                if hops < 0:
                    return current
                target = os.readlink(found)
                base = "" if target.startswith("/") else "/".join(done)
                joined = self._clean(posixpath.join("/" + base, target))
                parts = (joined.split("/") if joined else []) + parts
                done = []
                continue
            done.append(part)
        return "/".join(done)

    def is_dir(self, path: str) -> bool:
        st = self.lstat(self.resolve(path))
        return st is not None and stat.S_ISDIR(st.st_mode)

    def listdir(self, path: str) -> list[str]:
        """Names in a directory of the view, whiteouts applied."""
        rel = self._clean(path)
        names: set[str] = set()
        hidden: set[str] = set()
        for layer in self.layers:
            directory = layer.joinpath(*rel.split("/")) if rel else layer
            if self.locate(rel) is None and rel:
                break
            try:
                entries = os.listdir(directory)
            except OSError:
                continue
            if not os.path.isdir(directory) or os.path.islink(directory):
                break
            for name in entries:
                if name == OPAQUE:
                    continue
                if name.startswith(WHITEOUT_PREFIX):
                    hidden.add(name[len(WHITEOUT_PREFIX):])
                    continue
                st = os.lstat(directory / name)
                if _is_whiteout(st):
                    hidden.add(name)
                    continue
                if name not in hidden:
                    names.add(name)
            if rel and _is_opaque(directory):
                break
        return sorted(names)

    def read_text(self, path: str) -> str | None:
        found = self.locate(self.resolve(path))
        if found is None or not found.is_file():
            return None
        return found.read_text(errors="replace")
