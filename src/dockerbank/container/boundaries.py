"""The side effects the container service is handed: OCI runtime, conmon, mounts, network driver.

:class:`~dockerbank.container.lifecycle.ContainerService` takes one object of each (its
constructor arguments; the real ones are built on first use when none is given), so its logic
(state machine, restart policy, reconcile, clean-up, rm) is unit-tested with fakes
(tests/unit/test_container_service.py) while the integration tests run the real ones:

=============  ==============================================  ====================================
boundary       real implementation                             what it does
=============  ==============================================  ====================================
``Runtime``    :class:`dockerbank.runtime.oci.OciRuntime`      crun/runc start, kill, delete, pause
``Conmon``     the module :mod:`dockerbank.runtime.conmon`     spawn the monitor, exit file, attach
``Mounts``     :class:`dockerbank.host.mounts.HostMounts`      overlay mount, unmount, mount table
``Network``    :class:`dockerbank.network.driver.NetworkDriver`  validate, set up, join, tear down
=============  ==============================================  ====================================

Only type checkers import this module (``typing`` stays out of the CLI's start-up).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Protocol

from dockerbank.container.model import Container
from dockerbank.host.mounts import MountInfo
from dockerbank.runtime.conmon import Started


class Runtime(Protocol):
    """The OCI runtime of the containers (``create``/``exec`` go through conmon)."""

    @property
    def name(self) -> str: ...

    @property
    def path(self) -> str:
        """The runtime binary."""
        ...

    def state_dir(self, cid: str) -> Path:
        """The runtime's own state directory of container ``cid``."""
        ...

    def start(self, cid: str) -> None: ...

    def kill(self, cid: str, signal: str | int = "TERM", all_processes: bool = False) -> None: ...

    def signal(self, cid: str, pid: int, sig: int) -> None:
        """Send ``sig`` to the container's init (``pid`` in the host's pid namespace); a process
        that is gone already is not an error."""
        ...

    def delete(self, cid: str, force: bool = False) -> None: ...

    def state(self, cid: str) -> dict[str, Any]: ...

    def pause(self, cid: str) -> None: ...

    def resume(self, cid: str) -> None: ...

    def update(self, cid: str, resources: dict[str, Any]) -> None:
        """New cgroup limits (OCI ``linux.resources``) for a running container."""
        ...


class Conmon(Protocol):
    """The per-container monitor: starts ``<runtime> create``/``exec``, keeps stdio, writes the exit."""

    def spawn(self, runtime: Any, cid: str, bundle: Path, *, log_path: Path, terminal: bool, stdin: bool,
              command: str, exit_command: list[str] | None = None, exec_spec: Path | None = None,
              exec_id: str | None = None, attach_first: bool = False, log_args: list[str] | None = None) -> Started: ...

    def alive(self, pid: int, starttime: int = 0) -> bool: ...

    def proc_starttime(self, pid: int) -> int: ...

    def read_exit(self, work: Path) -> int | None: ...

    def oom_reported(self, work: Path) -> bool: ...

    def wait_exit(self, work: Path, conmon_pid: int, conmon_start: int = 0,
                  timeout: float | None = None, *, exit_command: bool = True) -> int | None: ...

    def connect_attach(self, work: Path) -> socket.socket: ...


class Mounts(Protocol):
    """The container's root filesystem: overlay mounts and the mount table."""

    def mount_overlay(self, target: Path, lowers: list[Path], upper: Path, work: Path, *,
                      layers_dir: Path | None = None, idmap: tuple[list[dict], list[dict]] | None = None) -> None: ...

    def unmount(self, path: str | Path, lazy: bool = True) -> bool: ...

    def is_mounted(self, path: str | Path) -> bool:
        """Whether a filesystem of its own (an overlay) is mounted at ``path``."""
        ...

    def overlay_mounts_under(self, root: str | Path) -> list[MountInfo]: ...

    def mount_tmpfs(self, target: str | Path, data: str) -> None:
        """A tmpfs at ``target`` with the options ``data`` (a pod's shared /dev/shm)."""
        ...


class Network(Protocol):
    """A container's network: checked at create, set up at start, torn down at exit and rm."""

    def validate_create(self, network_value: str, options: dict[str, Any]) -> dict[str, Any]: ...

    def up(self, container: Container, base: Path) -> Any:
        """Set up the network of a starting container (writes ``base/hosts``, ``base/resolv.conf``);
        what :meth:`join` takes, None for none/host."""
        ...

    def join(self, spec: dict[str, Any], net: Any) -> None: ...

    def down(self, container_id: str, *, background: bool = False) -> None:
        """Release addresses, ports, rules and the netns (never raises); ``background``: without
        making the caller wait (a detached process)."""
        ...
