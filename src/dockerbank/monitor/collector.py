"""The ``prometheus_client`` collector of one Dockerbank root, and the text exposition.

One collector lives as long as its server: it keeps what is costly and changes slowly
(volume sizes, the backup repository's summary, device names) between scrapes; everything
else is read afresh through a new engine per scrape, so a scrape sees what the CLI sees.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from dockerbank.config import Config
from dockerbank.errors import DockerbankError
from dockerbank.monitor import backups, verifylog
from dockerbank.monitor.families import (Families, backup_families, container_families, copy_families,
                                         host_families)
from dockerbank.monitor.readings import (DeviceNames, HostReading, ImageReading, SizeCache, VolumeReading,
                                         filesystem, parse_rfc3339, read_container)

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from dockerbank.host.cgroups import CgroupLayout

#: The content type of the text exposition format (what Prometheus asks for and accepts).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class DockerbankCollector:
    """Collects containers (cAdvisor's figures + Dockerbank's), host and backup metrics."""

    def __init__(self, config: Config, backups, *, clock: Callable[[], float] = time.time,
                 volume_size_ttl: float = 60.0):
        """``backups``: the backup repository reported on, handed in by the transport (an object
        with ``url``, ``snapshots()`` and, when local, ``path`` and ``snapshots_dir``, as
        ``backup.repository.Repository``; monitoring and backup are sibling operations and do
        not import each other)."""
        self.config = config
        self.backups = backups
        self.backup_repository = str(backups.url)
        try:
            self.backup_path: Path | None = Path(backups.path)
            self._snapshots_dir: Path | None = Path(backups.snapshots_dir)
        except DockerbankError:   # a remote repository: no local directory, manifests read per scrape
            self.backup_path = self._snapshots_dir = None
        self.clock = clock
        self.sizes = SizeCache(volume_size_ttl)
        self.devices = DeviceNames()
        self._layout: CgroupLayout | None = None
        self._snapshots: tuple[object, list] | None = None   # (directory stamp, snapshots)

    def collect(self) -> Iterator:
        """``prometheus_client``'s collector protocol: one engine per scrape."""
        from dockerbank.engine import Engine

        engine = Engine(self.config)
        try:
            families = self.families(engine)
        finally:
            engine.close()
        yield from families.metrics()

    def families(self, engine) -> Families:
        """Read everything through ``engine`` and build the families."""
        from dockerbank.container.stats import machine_memory, online_cpus
        from dockerbank.host.cgroups import container_cgroups_path, detect_layout

        if self._layout is None:
            self._layout = detect_layout()
        now = self.clock()
        memory = machine_memory()
        containers = engine.containers.list()
        readings = [read_container(c, self._layout, container_cgroups_path(c.id), host_memory=memory,
                                   bundle=engine.containers.dir(c.id)) for c in containers]
        out = container_families(readings, now, self.devices)
        volumes = self._volumes(engine)
        host = HostReading(
            images=[ImageReading(i.id, i.tags[0] if i.tags else "<none>", i.size) for i in engine.images.list()],
            volumes=volumes, cpu_cores=online_cpus(), memory_bytes=memory,
            filesystems=[fs for fs in (filesystem("root", self.config.root),
                                       filesystem("backup", self.backup_path) if self.backup_path else None)
                         if fs is not None])
        host_families(out, host)
        summary = self._backup_summary(volumes, readings, now)
        backup_families(out, summary, str(self.backup_repository))
        copy_families(out, verifylog.copies(self.config.root))
        return out

    def _volumes(self, engine) -> list[VolumeReading]:
        result = []
        for volume in engine.volumes.list({}):
            name = volume.name
            size = self.sizes.get(name, functools.partial(engine.volumes.size, name))
            result.append(VolumeReading(name, parse_rfc3339(volume.created), size, volume.anonymous))
        self.sizes.keep_only({v.name for v in result})
        return result

    def _backup_summary(self, volumes: list[VolumeReading], containers: list, now: float):
        """The repository's summary; its manifests are re-read only when its snapshot directory changed."""
        try:
            stamp = _stamp(self._snapshots_dir)
            if stamp is None or self._snapshots is None or self._snapshots[0] != stamp:
                self._snapshots = (stamp, self.backups.snapshots())
            snapshots = self._snapshots[1]
        except (DockerbankError, OSError):
            return None
        verified = verifylog.load(self.config.root, self.backup_repository)
        return backups.summarize(snapshots, verified, volumes, containers, now)


def _stamp(directory: Path | None) -> object:
    """What changes when a manifest is added or removed (a rename into the directory changes its mtime);
    ``None`` (read every time) when the repository has no local snapshot directory."""
    if directory is None:
        return None
    try:
        st = os.stat(directory)
        count = len(os.listdir(directory))
    except FileNotFoundError:
        return ("absent",)
    return (st.st_ino, st.st_mtime_ns, count)


def render(collector: DockerbankCollector) -> bytes:
    """The text exposition of one scrape."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)
