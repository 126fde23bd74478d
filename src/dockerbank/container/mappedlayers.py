"""The image layers a user-namespaced container mounts, on either road of :mod:`dockerbank.host.idmaproad`.

ID-mapped road: the layers themselves, with the mapping handed to the overlay mount. Copy road:
``<root>/overlay-idmap/<mapping>/<layer>`` copies with shifted owners, made at the first mount
of a container of that mapping and shared by every container holding it (``users/<id>``
entries); the last container's removal removes them. A container's own lower layer (its init
layer) is copied into its own directory and goes with it. A per-mapping lock file serialises
copying and removal.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from dockerbank.host.fs import flocked

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from dockerbank.config import Config
    from dockerbank.host.idmaproad import Road

USERS = "users"


def mapping_key(record: dict[str, Any]) -> str:
    """The directory name of a mapping (pure): ``u<start>-g<start>-<size>``, or a digest for
    mappings of more than one range."""
    uids, gids = record["uid"], record["gid"]
    if len(uids) == 1 and len(gids) == 1 and uids[0]["containerID"] == gids[0]["containerID"] == 0 \
            and uids[0]["size"] == gids[0]["size"]:
        return f"u{uids[0]['hostID']}-g{gids[0]['hostID']}-{uids[0]['size']}"
    text = repr([(m["containerID"], m["hostID"], m["size"]) for key in ("uid", "gid") for m in record[key]])
    return "m" + hashlib.sha256(text.encode()).hexdigest()[:32]


def copy_name(lower: Path, layers_dir: Path) -> str | None:
    """The name of a shared layer's copy (``<layer>`` of ``layers/<layer>/diff``), None for a
    lower that is not an image layer (pure)."""
    try:
        rel = lower.relative_to(layers_dir)
    except ValueError:
        return None
    return "-".join(rel.parts[:-1] if rel.parts[-1:] == ("diff",) and len(rel.parts) > 1 else rel.parts)


def live_users(names: list[str], exists: Any) -> list[str]:
    """The container ids among ``names`` whose directory is still there (pure, ``exists`` asks)."""
    return [cid for cid in names if exists(cid)]


class MappedLayers:
    """Lower layers of user-namespaced containers: what to mount, and clean-up at removal."""

    def __init__(self, config: Config):
        self.config = config
        self.base = config.root / "overlay-idmap"
        self._road: Road | None = None

    def road(self) -> Road:
        """The road of this root (asked once per process; the probe is cached per root)."""
        if self._road is None:
            from dockerbank.host.idmaproad import road

            self._road = road(self.config.root)
        return self._road

    def lowers(self, cid: str, lowers: list[Path], record: dict[str, Any]
               ) -> tuple[list[Path], tuple[list[dict], list[dict]] | None]:
        """(lower dirs, idmap for the mount) of container ``cid`` with mapping ``record``."""
        from dockerbank.host.idmaproad import IDMAPPED

        idmap = (record["uid"], record["gid"])
        if self.road().name == IDMAPPED:
            return lowers, idmap
        from dockerbank.host.layercopy import copy_shifted

        key = mapping_key(record)
        own = self.config.containers_dir / cid
        out: list[Path] = []
        with self._locked(key):
            folder = self.base / key
            (folder / USERS).mkdir(mode=0o700, parents=True, exist_ok=True)
            (folder / USERS / cid).touch()
            for lower in lowers:
                name = copy_name(lower, self.config.layers_dir)
                if name is None:   # the container's own (init) layer: its copy lives and dies with it
                    dest = own / f"{lower.name}-mapped" if lower.is_relative_to(own) else \
                        folder / ("x" + hashlib.sha256(str(lower).encode()).hexdigest()[:32])
                else:
                    dest = folder / name
                if not dest.exists():
                    copy_shifted(lower, dest, *idmap)
                out.append(dest)
        return out, None

    def release(self, cid: str) -> None:
        """Container ``cid`` is gone: drop it from its mappings, and remove the copies of a
        mapping no live container holds (entries of containers whose directory is gone too)."""
        if not self.base.is_dir():
            return
        for folder in self.base.iterdir():
            if not (folder / USERS / cid).exists():
                continue
            with self._locked(folder.name):
                try:
                    (folder / USERS / cid).unlink()
                except FileNotFoundError:
                    pass
                try:
                    names = os.listdir(folder / USERS)
                except FileNotFoundError:
                    continue
                if not live_users(names, self._container_exists):
                    shutil.rmtree(folder, ignore_errors=True)

    def check(self, repair: bool, grace: float) -> list[str]:
        """``system check``: layer copies of mappings no container holds any more (a killed
        ``rm``), older than ``grace`` seconds; removed with ``repair``. One line each."""
        import time

        if not self.base.is_dir():
            return []
        out = []
        for folder in sorted(p for p in self.base.iterdir() if p.is_dir()):
            with self._locked(folder.name):
                try:
                    names = os.listdir(folder / USERS)
                    if live_users(names, self._container_exists) or time.time() - folder.stat().st_mtime < grace:
                        continue
                except FileNotFoundError:
                    continue
                out.append(f"image layer copies of ID mapping {folder.name} that no container uses: removed")
                if repair:
                    shutil.rmtree(folder, ignore_errors=True)
        return out

    def _container_exists(self, cid: str) -> bool:
        d = self.config.containers_dir
        return (d / cid).exists() or (d / f".rm-{cid}").exists()

    @contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        self.base.mkdir(mode=0o700, parents=True, exist_ok=True)
        with flocked(self.base / f".{key}.lock"):
            yield
