"""Shared ``/dev/shm`` directories: one host tmpfs per owner whose IPC namespace others join.

An owner is a pod (its infra container mounts it; podman's ``ShmDir``) or a container run with
``--ipc shareable`` (docker's ``containers/<id>/mounts/shm``). The tmpfs lives at
``<base>/<owner id>/shm`` (``base`` one directory per kind of owner below the run root); the
owner and every container joining its IPC namespace bind it at ``/dev/shm``, so POSIX shared
memory files are shared as System V IPC is through the namespace. One implementation for both
kinds: mounting, unmounting, removing, and ``system check``'s leftovers of owners that are gone.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from dockerbank.container.model import DEFAULT_SHM_SIZE

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from dockerbank.container.boundaries import Mounts


class ShmDirs:
    """The shared /dev/shm tmpfs of one kind of owner (``what``: "pod", "container") under ``base``,
    mounted and unmounted through ``mounts`` (host.mounts.HostMounts; a fake in unit tests)."""

    def __init__(self, base: Path, mounts: Mounts, what: str):
        self.base = base
        self.mounts = mounts
        self.what = what

    def path(self, owner_id: str) -> Path:
        """Where the owner's /dev/shm is mounted on the host."""
        return self.base / owner_id / "shm"

    def ensure_mounted(self, path: str | Path, size: int) -> None:
        """A tmpfs of ``size`` bytes (0: docker's 64 MiB) at ``path``, mode 1777 as docker's, when
        none is there (first start, a start after the owner's stop or a reboot)."""
        path = Path(path)
        if self.mounts.is_mounted(path):
            return
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.mounts.mount_tmpfs(path, f"mode=1777,size={size or DEFAULT_SHM_SIZE}")

    def unmount(self, owner_id: str) -> None:
        """Unmount the owner's tmpfs lazily (containers still bound to it keep its files until
        they end, as with docker's stop of a shareable container)."""
        for _ in range(4):  # a mount stacked by a start racing a system check, at most a few
            if not self.mounts.unmount(self.path(owner_id), lazy=True):
                break

    def remove(self, owner_id: str) -> bool:
        """Unmount the owner's tmpfs and remove its directory; whether there was anything."""
        top = self.path(owner_id).parent
        if not top.exists():
            return False
        self.unmount(owner_id)
        shutil.rmtree(top, ignore_errors=True)
        return True

    def check(self, known: Callable[[], Iterable[str]], repair: bool = False) -> list[str]:
        """``system check``: the directories of owners that are gone (``known()`` the IDs that
        exist, read after the directories so an owner made meanwhile is known), unmounted and
        removed with ``repair``."""
        if not self.base.is_dir():
            return []
        found = sorted(entry.name for entry in self.base.iterdir())
        alive = set(known())
        findings = []
        for owner_id in found:
            if owner_id in alive:
                continue
            findings.append(f"/dev/shm of removed {self.what} {owner_id[:12]}: unmounted and removed")
            if repair:
                self.remove(owner_id)
        return findings
