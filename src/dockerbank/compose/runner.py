"""A project directory run by compose: the stack runner handed to the catalog (its deploy and rm
logic is unit-tested with a fake runner, and runs for real through this one)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


class ComposeRunner:
    """``up -d --wait`` / ``down`` of ``<directory>/compose.yaml`` as project ``project``."""

    def __init__(self, engine, out: Callable[..., None] | None = None, wait_timeout: float = 600.0):
        self.engine = engine
        self.out = out
        self.wait_timeout = wait_timeout

    def _stack(self, directory: Path, project: str):
        from dockerbank.compose.loader import LoadOptions, load
        from dockerbank.compose.model import normalize
        from dockerbank.compose.service import Stack

        # only the project's own .env: a PORT in the caller's shell must not change a deployment
        opts = LoadOptions(files=[str(directory / "compose.yaml")], project_name=project,
                           project_directory=str(directory), cwd=str(directory), environ={})
        return Stack(self.engine, normalize(load(opts)), out=self.out)

    def up(self, directory: Path, project: str) -> None:
        """Create and start the services and wait until each is healthy (or started, without a healthcheck)."""
        from dockerbank.compose.service import UpOptions

        self._stack(directory, project).up(UpOptions(wait=True, wait_timeout=self.wait_timeout))

    def down(self, directory: Path, project: str, volumes: bool) -> list[str]:
        """Remove the project's containers and networks (named volumes too with ``volumes``)."""
        return self._stack(directory, project).down(volumes=volumes)

    def projects(self) -> set[str]:
        from dockerbank.compose.service import projects

        return {p["Name"] for p in projects(self.engine)}
