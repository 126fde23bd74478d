"""Where Dockerbank keeps its state; passed to every component, never global."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = "/var/lib/dockerbank"
DEFAULT_RUN_ROOT = "/run/dockerbank"


@dataclass(frozen=True)
class Config:
    """Paths of one Dockerbank installation.

    ``root`` holds what must survive a reboot (blobs, layers, volumes, the database);
    ``run_root`` holds what dies with the host (runtime state, sockets, locks).
    """

    root: Path
    run_root: Path

    @classmethod
    def from_env(cls, root: str | None = None, run_root: str | None = None) -> "Config":
        """Build from explicit values, else ``DOCKERBANK_ROOT``/``DOCKERBANK_RUNROOT``, else defaults.

        A non-default root gets its own run root (derived from the root's path) so that two
        roots on one host never share runtime state.
        """
        root_path = Path(root or os.environ.get("DOCKERBANK_ROOT") or DEFAULT_ROOT).absolute()
        explicit_run = run_root or os.environ.get("DOCKERBANK_RUNROOT")
        if explicit_run:
            run_path = Path(explicit_run).absolute()
        elif str(root_path) == DEFAULT_ROOT:
            run_path = Path(DEFAULT_RUN_ROOT)
        else:
            run_path = Path(DEFAULT_RUN_ROOT) / ("root" + str(root_path).replace("/", "_"))
        return cls(root=root_path, run_root=run_path)

    @property
    def db_path(self) -> Path:
        return self.root / "state.db"

    @property
    def blobs_dir(self) -> Path:
        return self.root / "blobs" / "sha256"

    @property
    def layers_dir(self) -> Path:
        return self.root / "layers"

    @property
    def containers_dir(self) -> Path:
        return self.root / "containers"

    @property
    def volumes_dir(self) -> Path:
        return self.root / "volumes"

    @property
    def tmp_dir(self) -> Path:
        """Scratch space on the same filesystem as the store, so renames are atomic."""
        return self.root / "tmp"
