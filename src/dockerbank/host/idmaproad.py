"""Which road gives a ``--userns=auto`` container its image layers: ID-mapped or copied.

``idmapped``: the layers are mounted through ID-mapped clones (:mod:`dockerbank.host.idmap`):
one copy on disk for every mapping. ``copy``: kernels whose overlayfs refuses ID-mapped lower
layers (before 5.19, or a filesystem without ID-mapping) get a copy of each layer per mapping
with its owners shifted (:mod:`dockerbank.host.layercopy`), shared by the containers of that
mapping and removed with the last one.

The kernel is asked once per root and kernel release (a real overlay mount over an ID-mapped
lower in the root's own filesystem) and the answer kept in ``<root>/overlay-idmap/road``.
``DOCKERBANK_IDMAP=off`` forces the copy road (tests use it on a kernel that can ID-map),
``on`` the ID-mapped road, ``auto`` (the default) the probe.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dockerbank.errors import DockerbankError, InvalidArgument

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from collections.abc import Mapping

ENV = "DOCKERBANK_IDMAP"
IDMAPPED = "idmapped"
COPY = "copy"
CACHE_DIR = "overlay-idmap"   # under the root: the road file and the per-mapping layer copies


@dataclass(frozen=True)
class Road:
    """The road in use and why."""

    name: str      # idmapped | copy
    reason: str    # "kernel probe", "DOCKERBANK_IDMAP=off", or the kernel's refusal

    def describe(self) -> str:
        """One phrase for ``system info`` and ``audit host``."""
        if self.name == IDMAPPED:
            return f"image layers ID-mapped, shared ({self.reason})"
        return f"image layers copied per mapping with shifted owners, shared by its containers ({self.reason})"


def forced(value: str | None) -> str | None:
    """The road ``DOCKERBANK_IDMAP`` forces (None: probe), pure; a bad value is one line."""
    text = (value or "").strip().lower()
    if text in ("", "auto"):
        return None
    if text in ("on", "1", "true", IDMAPPED):
        return IDMAPPED
    if text in ("off", "0", "false", COPY):
        return COPY
    raise InvalidArgument(f"invalid {ENV}={value!r}: use auto, on (ID-mapped layers) or off (copied layers)",
                          exit_code=125)


def parse_cache(text: str, release: str) -> Road | None:
    """The cached answer when it is this kernel's (pure): ``<release> <road> <reason...>``."""
    parts = text.strip().split(" ", 2)
    if len(parts) < 2 or parts[0] != release or parts[1] not in (IDMAPPED, COPY):
        return None
    return Road(parts[1], parts[2] if len(parts) > 2 else "kernel probe")


def road(root: Path, env: Mapping[str, str] | None = None) -> Road:
    """The road of this root (forced by the environment, else the cached or a new probe)."""
    value = (os.environ if env is None else env).get(ENV)
    force = forced(value)
    if force is not None:
        return Road(force, f"{ENV}={value}")
    release = os.uname().release
    cache = root / CACHE_DIR / "road"
    try:
        cached = parse_cache(cache.read_text(), release)
    except OSError:
        cached = None
    if cached is not None:
        return cached
    ok, why = probe(root)
    answer = Road(IDMAPPED, "kernel probe") if ok else Road(COPY, f"the kernel refused an ID-mapped layer: {why}")
    try:
        cache.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = cache.with_name(f".road-{os.getpid()}")
        tmp.write_text(f"{release} {answer.name} {answer.reason}\n")
        os.replace(tmp, cache)
    except OSError:
        pass   # a read-only root: asked again next time
    return answer


def probe(root: Path) -> tuple[bool, str]:
    """Whether overlayfs mounts an ID-mapped lower layer of this root's filesystem (and the
    kernel's reason when not): a real mount in a scratch directory, removed after."""
    from dockerbank.host.mounts import unmount
    from dockerbank.host.overlay import mount_overlay

    try:
        root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".idmap-probe-", dir=root))
    except OSError as exc:   # a root this process cannot write: no container starts there anyway
        return False, f"cannot probe in {root}: {exc.strerror or exc}"
    try:
        for sub in ("lower", "upper", "work", "merged"):
            (scratch / sub).mkdir()
        one = [{"containerID": 0, "hostID": 1, "size": 1}]
        try:
            mount_overlay(scratch / "merged", [scratch / "lower"], scratch / "upper", scratch / "work",
                          idmap=(one, one))
        except DockerbankError as exc:
            return False, str(exc)
        unmount(scratch / "merged", lazy=True)
        return True, ""
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
