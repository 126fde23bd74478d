"""``system df``: space used by images, containers and volumes, and how much is reclaimable."""

from __future__ import annotations

from dataclasses import dataclass, field

from dockerbank.container import model
from dockerbank.host.fs import tree_size
from dockerbank.units import human_size


@dataclass(frozen=True)
class UsageRow:
    type: str
    total: int
    active: int
    size: int
    reclaimable: int

    def as_dict(self) -> dict:
        percent = f" ({self.reclaimable * 100 // self.size}%)" if self.size else ""
        return {"Type": self.type, "TotalCount": self.total, "Active": self.active,
                "Size": human_size(self.size), "Reclaimable": human_size(self.reclaimable) + percent}


@dataclass(frozen=True)
class VolumeUsage:
    name: str
    links: int
    size: int


@dataclass
class DiskUsage:
    images: UsageRow
    containers: UsageRow
    volumes: list[VolumeUsage] = field(default_factory=list)

    def summary(self) -> list[UsageRow]:
        used = [v for v in self.volumes if v.links]
        total = sum(v.size for v in self.volumes)
        volume_row = UsageRow("Local Volumes", len(self.volumes), len(used), total,
                              total - sum(v.size for v in used))
        return [self.images, self.containers, volume_row, UsageRow("Build Cache", 0, 0, 0, 0)]


def disk_usage(engine) -> DiskUsage:
    """Measure the root: layers counted once however many images share them."""
    containers = engine.containers.list()
    used_images = {c.config.image_id for c in containers}
    layers = engine.images.layers
    all_layers: dict[str, int] = {}
    active_layers: set[str] = set()
    images = engine.images.list()
    for image in images:
        for layer in layers.chain(image.top_chain):
            all_layers[layer.chain_id] = layer.size
            if image.id in used_images:
                active_layers.add(layer.chain_id)
    image_size = sum(all_layers.values())
    image_row = UsageRow("Images", len(images), len([i for i in images if i.id in used_images]), image_size,
                         image_size - sum(all_layers[c] for c in active_layers))
    sizes = {c.id: tree_size(engine.containers.dir(c.id) / "upper") for c in containers}
    running = [c for c in containers if c.state.status in model.ACTIVE]
    container_size = sum(sizes.values())
    container_row = UsageRow("Containers", len(containers), len(running), container_size,
                             container_size - sum(sizes[c.id] for c in running))
    volumes = [VolumeUsage(v.name, len(engine.volumes.users(v.name)), engine.volumes.size(v.name))
               for v in engine.volumes.list({})]
    return DiskUsage(image_row, container_row, volumes)
