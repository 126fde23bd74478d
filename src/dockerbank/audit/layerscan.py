"""One pass over an image's layer tars, bottom first: what each layer ships and what the image ends with.

It finds setuid/setgid files and world-writable directories (in the final file system),
secrets in files (in any layer: a secret deleted later is still shipped), files deleted by a
later layer's whiteouts, and collects the package databases the inventory reads. Layers come
as streams from whatever the caller hands in (the image store, or in-memory tars in tests).
"""

from __future__ import annotations

import posixpath
import re
import tarfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from dockerbank.audit import secrets
from dockerbank.audit.findings import Finding, finding

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

MAX_SCAN = 4 << 20          # text files larger than this are listed as not scanned for secrets
MAX_COLLECT = 64 << 20      # a package database larger than this is refused as implausible
_HEAD = 8192

# world-writable by design
_SCRATCH_DIRS = {"tmp", "var/tmp", "dev/shm", "run/lock", "var/lock"}
# content that is documentation, locales or package metadata, never an application's secret
_SKIP_CONTENT = ("usr/share/doc/", "usr/share/man/", "usr/share/info/", "usr/share/locale/", "usr/share/i18n/",
                 "usr/share/zoneinfo/", "usr/share/common-licenses/", "usr/share/perl", "usr/include/",
                 "var/lib/dpkg/", "var/lib/apt/lists/", "var/cache/debconf/", "usr/share/mime/",
                 "proc/", "sys/")

# package databases and metadata the inventory reads (the final state of each)
_COLLECT = re.compile(
    r"^(var/lib/dpkg/status|var/lib/dpkg/status\.d/[^/]+|usr/share/doc/[^/]+/copyright|lib/apk/db/installed"
    r"|var/lib/rpm/(rpmdb\.sqlite(-wal)?|Packages(\.db)?)|usr/lib/sysimage/rpm/rpmdb\.sqlite(-wal)?"
    r"|.*/(site|dist)-packages/[^/]+\.(dist-info/METADATA|egg-info/PKG-INFO|egg-info)"
    r"|(.*/)?node_modules/(@[^/]+/)?[^/]+/package\.json|etc/os-release|usr/lib/os-release"
    r"|var/lib/dpkg/info/[^/]+\.list)$"
)


@dataclass(frozen=True)
class LayerSource:
    """A layer to scan: its position (1 = bottom), diff ID, the history line that made it, a stream opener."""

    index: int
    diff_id: str
    created_by: str
    open: Callable[[], BinaryIO]


@dataclass
class ScanResult:
    findings: list[Finding] = field(default_factory=list)
    collected: dict[str, bytes] = field(default_factory=dict)   # path -> bytes, final state
    complete: bool = True


@dataclass
class _Secret:
    layer: int
    path: str
    kinds: list[str]
    lines: list[int]
    gone_in: int | None = None      # the layer that deleted or replaced it


@dataclass
class _Shipped:
    layer: int
    size: int


# libraries and shared data: only token shapes are looked for (keywords there are code, not secrets)
_LIBRARIES = re.compile(r"^(usr/(local/)?(lib|lib64|share|libexec)/|lib(64)?/|.*/(site|dist)-packages/|.*/node_modules/)")


def wants(path: str) -> bool:
    """Whether the inventory needs this file's content."""
    return bool(_COLLECT.match(path))


def normalise(name: str) -> str | None:
    cleaned = posixpath.normpath(name.lstrip("/")) if name else "."
    if cleaned in (".", "..") or cleaned.startswith("../"):
        return None
    return cleaned


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


class _State:
    """The merged file system as far as the audit needs it."""

    def __init__(self) -> None:
        self.files: dict[str, _Shipped] = {}                  # regular files: where shipped, size
        self.special: dict[str, tuple[int, int, str]] = {}    # path -> (layer, mode, kind) for setuid & ww dirs
        self.secrets: dict[str, _Secret] = {}                 # live secrets by path
        self.gone_secrets: list[_Secret] = []
        self.collected: dict[str, bytes] = {}
        self.collected_in: dict[str, int] = {}
        self.deleted: list[tuple[int, str, int, int, int]] = []  # (layer, path, files, bytes, first layer)

    def remove(self, layer: int, target: str, keep_self: bool = False) -> None:
        """Apply a whiteout of ``target`` (an opaque dir, ``keep_self``: everything below it).

        Whiteouts hide what lower layers shipped, never what their own layer adds.
        """
        def hit(path: str, shipped_in: int) -> bool:
            return shipped_in < layer and _under(path, target) and not (keep_self and path == target)

        count = size = 0
        first = layer
        for path in [p for p, s in self.files.items() if hit(p, s.layer)]:
            shipped = self.files.pop(path)
            count += 1
            size += shipped.size
            first = min(first, shipped.layer)
        for path in [p for p, s in self.special.items() if hit(p, s[0])]:
            del self.special[path]
        for path in [p for p in self.collected if hit(p, self.collected_in[p])]:
            del self.collected[path]
        for path in [p for p, s in self.secrets.items() if hit(p, s.layer)]:
            secret = self.secrets.pop(path)
            secret.gone_in = layer
            self.gone_secrets.append(secret)
        if count:
            self.deleted.append((layer, target, count, size, first))

    def replace(self, layer: int, path: str) -> None:
        """A later layer writes ``path`` again: an earlier secret there is still shipped below."""
        secret = self.secrets.pop(path, None)
        if secret is not None:
            secret.gone_in = layer
            self.gone_secrets.append(secret)
        self.special.pop(path, None)
        self.collected.pop(path, None)


def scan_layers(layers: Iterable[LayerSource], scan_secrets: bool = True) -> ScanResult:
    """Scan the layers bottom first; never raises for bad content (it becomes an ``unreadable`` finding)."""
    state = _State()
    result = ScanResult()
    unscanned: list[str] = []
    for layer in layers:
        try:
            stream = layer.open()
            try:
                _scan_layer(layer, stream, state, unscanned, scan_secrets)
            finally:
                stream.close()
        except (tarfile.TarError, EOFError, zlib.error, OSError, ValueError) as exc:
            result.complete = False
            result.findings.append(finding("unreadable", _where(layer, ""),
                                           f"layer {layer.diff_id[:19]} could not be read to its end: {exc}"))
        except Exception as exc:  # noqa: BLE001 - a stored layer the store itself cannot open (NotFound, CorruptData)
            from dockerbank.errors import DockerbankError

            if not isinstance(exc, DockerbankError):
                raise
            result.complete = False
            result.findings.append(finding("unreadable", _where(layer, ""), f"layer could not be read: {exc}"))
    _report(state, result, unscanned)
    result.collected = state.collected
    return result


def _where(layer: LayerSource, path: str) -> str:
    return f"layer {layer.index}" + (f": /{path}" if path else "")


def _scan_layer(layer: LayerSource, stream: BinaryIO, state: _State, unscanned: list[str],
                scan_secrets: bool) -> None:
    seen: set[str] = set()
    try:
        seekable = stream.seekable()
    except (AttributeError, OSError, ValueError):
        seekable = False
    # a stored uncompressed tar is seekable: skipping the members not read costs a seek, not a read
    with tarfile.open(fileobj=stream, mode="r:" if seekable else "r|") as archive:
        for info in archive:
            path = normalise(info.name)
            if path is None:
                continue
            base = posixpath.basename(path)
            parent = posixpath.dirname(path)
            if base.startswith(".wh."):
                if base == ".wh..wh..opq":
                    state.remove(layer.index, parent, keep_self=True)
                elif not base.startswith(".wh..wh."):
                    state.remove(layer.index, posixpath.join(parent, base[4:]) if parent else base[4:])
                continue
            if path in seen:
                continue  # a tar may repeat a name; the first is what the packer meant, stay simple
            seen.add(path)
            state.replace(layer.index, path)
            mode = info.mode
            if info.isdir():
                if mode & 0o002 and path not in _SCRATCH_DIRS:
                    state.special[path] = (layer.index, mode, "dir")
                continue
            if not info.isreg():
                state.files.pop(path, None)
                continue
            state.files[path] = _Shipped(layer.index, info.size)
            if mode & 0o6000:
                state.special[path] = (layer.index, mode, "file")
            if wants(path):
                state.collected_in[path] = layer.index
                if info.size > MAX_COLLECT:
                    state.collected[path] = b""  # the inventory reports it as unreadable
                else:
                    handle = archive.extractfile(info)
                    state.collected[path] = handle.read() if handle else b""
                    if scan_secrets:
                        _secrets(layer, path, state.collected[path], state)
                continue
            if not scan_secrets or info.size == 0:
                continue
            what = secrets.credential_file(path)
            if what is not None:
                state.secrets[path] = _Secret(layer.index, path, [what], [])
                continue
            if path.startswith(_SKIP_CONTENT):
                continue
            handle = archive.extractfile(info)
            if handle is None:
                continue
            head = handle.read(_HEAD)
            if secrets.is_binary(head):
                continue
            if info.size > MAX_SCAN:
                unscanned.append(f"layer {layer.index}: /{path} ({info.size} bytes)")
                continue
            _secrets(layer, path, head + handle.read(), state)


def _secrets(layer: LayerSource, path: str, data: bytes, state: _State) -> None:
    if secrets.is_binary(data[:_HEAD]):
        return
    hits = secrets.scan_text(path, data, keywords=not _LIBRARIES.match(path))
    if hits:
        state.secrets[path] = _Secret(layer.index, path, sorted({h.kind for h in hits}),
                                      sorted({h.line for h in hits}))


def _package_files(collected: dict[str, bytes]) -> set[str]:
    """Paths installed by dpkg packages (their ``.list`` files), without the leading slash."""
    owned: set[str] = set()
    for path, data in collected.items():
        if path.startswith("var/lib/dpkg/info/") and path.endswith(".list"):
            owned.update(line.lstrip("/") for line in data.decode("utf-8", errors="replace").splitlines())
    return owned


def _report(state: _State, result: ScanResult, unscanned: list[str]) -> None:
    out = result.findings
    for path, (layer, mode, kind) in sorted(state.special.items()):
        where = f"layer {layer}: /{path}"
        if kind == "dir":
            sticky = " (sticky)" if mode & 0o1000 else ""
            out.append(finding("world-writable-dir", where, f"/{path} is world-writable{sticky}, mode {mode:04o}"))
        else:
            bits = " and ".join(b for b, m in (("setuid", 0o4000), ("setgid", 0o2000)) if mode & m)
            out.append(finding("setuid-file", where, f"/{path} is {bits}, mode {mode:04o}"))
    owned = _package_files(state.collected)
    for secret in list(state.secrets.values()) + state.gone_secrets:
        if secret.kinds == [secrets.KEYWORD] and secret.path in owned:
            continue  # a keyword in a file a Debian package installed: its configuration, not a user's secret
        lines = f" (line {', '.join(map(str, secret.lines[:5]))})" if secret.lines else ""
        detail = f"/{secret.path}{lines}: {', '.join(secret.kinds)}"
        if secret.gone_in is not None:
            detail += f"; deleted or replaced in layer {secret.gone_in} but still shipped in layer {secret.layer}"
        out.append(finding("secret-in-file", f"layer {secret.layer}: /{secret.path}", detail))
    for layer, path, count, size, first in state.deleted:
        out.append(finding("deleted-file-shipped", f"layer {layer}: /{path}",
                           f"/{path}: {count} file(s), {size} bytes deleted in layer {layer} "
                           f"but still shipped from layer {first}"))
    if unscanned:
        shown = "; ".join(unscanned[:5]) + (f"; and {len(unscanned) - 5} more" if len(unscanned) > 5 else "")
        out.append(finding("unscanned-file", "layers", f"{len(unscanned)} text file(s) over {MAX_SCAN >> 20} MiB "
                                                       f"not scanned for secrets: {shown}"))
