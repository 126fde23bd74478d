"""Where Dockerbank keeps its state; passed to every component, never global."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = "/var/lib/dockerbank"
DEFAULT_RUN_ROOT = "/run/dockerbank"
USER_ENV = "DOCKERBANK_ROOTLESS_UID"   # rootless: the ordinary user's host uid (set on entering its namespace)


def user_paths(uid: int, env: dict[str, str]) -> tuple[str, str]:
    """(root, run root) of an ordinary user's engine (pure): ``$XDG_DATA_HOME/dockerbank``
    (``~/.local/share/dockerbank``) and ``$XDG_RUNTIME_DIR/dockerbank`` (``/tmp/dockerbank-run-UID``
    where no login session made one, as Podman's ``/tmp/podman-run-UID``)."""
    data = env.get("XDG_DATA_HOME") or os.path.join(env.get("HOME") or f"/tmp/dockerbank-home-{uid}", ".local", "share")
    runtime = env.get("XDG_RUNTIME_DIR")
    return os.path.join(data, "dockerbank"), (os.path.join(runtime, "dockerbank") if runtime
                                              else f"/tmp/dockerbank-run-{uid}")


def _rootless_uid() -> int | None:
    if os.geteuid() != 0:
        return os.geteuid()
    value = os.environ.get(USER_ENV, "")
    return int(value) if value.isdigit() else None


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
        default_root, default_run = DEFAULT_ROOT, DEFAULT_RUN_ROOT
        user = _rootless_uid()
        if user is not None:  # an ordinary user's engine: its own root and run root (rootless)
            default_root, default_run = user_paths(user, dict(os.environ))
        root_path = Path(root or os.environ.get("DOCKERBANK_ROOT") or default_root).absolute()
        explicit_run = run_root or os.environ.get("DOCKERBANK_RUNROOT")
        if explicit_run:
            run_path = Path(explicit_run).absolute()
        elif str(root_path) == default_root:
            run_path = Path(default_run)
        else:
            run_path = Path(default_run) / ("root" + str(root_path).replace("/", "_"))
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
