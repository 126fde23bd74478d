"""``commit``: turn a container's own (top) layer into a new image layered on its image.

Only the container's upper directory is captured — never the image's layers again — and by
default the container is frozen while it is read, so that files a database is writing are
captured at one instant (seed 003: ``docker commit -p``).
"""

from __future__ import annotations

import copy
import os
import tempfile
from dataclasses import dataclass

from dockerbank.container import model
from dockerbank.image import compression
from dockerbank.image.pack import pack_dir
from dockerbank.image.store import ImageRecord, now_rfc3339
from dockerbank.oci import imageconfig


@dataclass(frozen=True)
class CommitOptions:
    """What ``commit`` was asked for, apart from the container."""

    reference: str | None = None
    pause: bool = True
    changes: tuple[str, ...] = ()
    message: str = ""
    author: str = ""


def container_image_config(base: dict, container: model.Container) -> dict:
    """The new image's container config: the image's, overridden by what the container ran with."""
    cfg = copy.deepcopy(base.get("config") or {})
    conf = container.config
    cfg.update({
        "Env": list(conf.env),
        "Cmd": list(conf.cmd) if conf.cmd else None,
        "Entrypoint": list(conf.entrypoint) if conf.entrypoint else None,
        "WorkingDir": conf.workdir,
        "User": conf.user,
        "Labels": dict(conf.labels) or None,
        "ExposedPorts": dict(conf.exposed_ports) or None,
        "Volumes": dict(conf.image_volumes) or None,
        "StopSignal": conf.stop_signal if conf.stop_signal != "SIGTERM" else cfg.get("StopSignal"),
    })
    return {key: value for key, value in cfg.items() if value not in (None, "", [], {})}


def commit(engine, ref: str, options: CommitOptions) -> ImageRecord:
    """Capture ``ref``'s top layer as a new image; return it (tagged when a reference is given)."""
    container = engine.containers.get(ref)
    images = engine.images
    base = images.image_config(container.config.image_id)
    new_cfg = container_image_config(base, container)
    for change in options.changes:  # validated before the container is frozen
        new_cfg = imageconfig.apply_change(new_cfg, change)
    images.config.tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix="commit-", dir=images.config.tmp_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            _capture_upper(engine, container, out, options.pause)
        with images.lock():
            top = images.get(container.config.image_id).top_chain
            with open(tmp_name, "rb") as handle:
                layer = images.layers.add(top, handle)
            with open(tmp_name, "rb") as handle:
                blob, size = images.blobs.put_stream(handle, expected=layer.diff_id)
            images.add_layer_blob(layer.diff_id, blob, compression.MEDIA_TAR, size)
            created = now_rfc3339()
            config = copy.deepcopy(base)
            config["created"] = created
            config["config"] = new_cfg
            config["container"] = container.id
            if options.author:
                config["author"] = options.author
            config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
            config["rootfs"]["diff_ids"] = list(config["rootfs"].get("diff_ids", [])) + [layer.diff_id]
            entry = {"created": created, "created_by": " ".join([container.config.path, *container.config.args])}
            if options.author:
                entry["author"] = options.author
            if options.message:
                entry["comment"] = options.message
            config["history"] = list(config.get("history") or []) + [entry]
            record = images.record_image(imageconfig.canonical_bytes(config))
            images.set_parent(record.id, container.config.image_id)
    finally:
        os.unlink(tmp_name)
    if options.reference:
        images.tag(record.id, options.reference)
        record = images.get(record.id)
    return record


def _capture_upper(engine, container: model.Container, out, pause: bool) -> None:
    """Pack the upper dir, frozen when asked and the container is running (thawed even on error)."""
    upper = engine.containers.dir(container.id) / "upper"
    freeze = pause and container.state.status == model.RUNNING
    if freeze:
        engine.containers.pause(container.id)
    try:
        record = container.config.userns
        pack_dir(upper, out, overlay_upper=True, idmap=(record["uid"], record["gid"]) if record else None)
    finally:
        if freeze:
            engine.containers.unpause(container.id)
