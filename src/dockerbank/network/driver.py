"""The network driver a container service is handed (``container.boundaries.Network``).

Thin: the work is in :mod:`dockerbank.network.runtime` and the network service; this object
binds them to one engine and decides where a teardown runs (now, in a forked child after a CLI
call, or in a new interpreter from the API service).
"""

from __future__ import annotations

import sys
from pathlib import Path

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from typing import Any


class NetworkDriver:
    """Networks of the containers of one engine (netavark-style bridge, user networks, joins)."""

    def __init__(self, engine: Any):
        self.engine = engine

    def validate_create(self, network_value: str, options: dict[str, Any]) -> dict[str, Any]:
        """At ``create``: what the container's config stores about its network (docker's checks)."""
        from dockerbank.network.runtime import validate_create

        return validate_create(self.engine, network_value, options)

    def up(self, container: Any, base: Path) -> Any:
        """At ``start``: set up the namespace, addresses and ports of ``container`` (a
        ``container.model.Container``: the layer above, so not imported here); None for none/host."""
        from dockerbank.network.runtime import network_up

        return network_up(self.engine, container, base)

    def join(self, spec: dict[str, Any], net: Any) -> None:
        """Point the OCI spec at the namespace :meth:`up` prepared."""
        from dockerbank.network.runtime import join_network

        join_network(spec, net)

    def down(self, container_id: str, *, background: bool = False) -> None:
        """Release the container's addresses, ports and netns (never raises).

        ``background``: hand the teardown (netavark: 150-250 ms) on, so a foreground ``run``
        returns the exit code without waiting for it: a CLI call forks a child for it when its
        engine closes; a resident process with background threads (the API service:
        ``Engine.background``) runs it in one of them, with its own database connection; any
        other long-lived engine starts a new interpreter (forking a threaded process is unsafe).
        """
        config = self.engine.config
        root, run_root = str(config.root), str(config.run_root)
        if background and self.engine.short_lived:
            self.engine.after_close(lambda: down_detached(root, run_root, container_id))
            return
        if background and self.engine.background is not None:
            self.engine.background(lambda: down_detached(root, run_root, container_id))
            return
        if background:
            import subprocess

            code = "import sys; from dockerbank.network.driver import down_detached; down_detached(*sys.argv[1:])"
            try:
                subprocess.Popen([sys.executable, "-c", code, str(config.root), str(config.run_root), container_id],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
                return
            except OSError:
                pass
        from dockerbank.network.runtime import network_down

        network_down(self.engine.networks, container_id)


def down_detached(root: str, run_root: str, cid: str) -> None:
    """Entry of the detached teardown process (see :meth:`NetworkDriver.down`)."""
    from dockerbank.config import Config
    from dockerbank.network.runtime import network_down
    from dockerbank.network.service import NetworkService
    from dockerbank.state.db import Database

    config = Config(Path(root), Path(run_root))
    db = Database(config.db_path)
    try:
        network_down(NetworkService(config, db), cid)
    finally:
        db.close()
