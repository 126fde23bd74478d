"""The infra container's image: a pause process built on this host, never pulled.

Podman builds ``localhost/podman-pause`` from catatonit; Debian 12 ships no catatonit, so the
image holds the host's busybox-static (already a dependency, for ``base-image busybox``) and
the infra runs a shell that waits for its stop signal: TERM ends it at once with 0 (a PID 1
has no default handler, so a bare ``sleep`` would wait out the stop timeout). The layer is
built deterministically, so the same busybox gives the same image ID.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from pathlib import Path

from dockerbank.errors import NotFound

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:
    from dockerbank.image.store import ImageStore

PAUSE_IMAGE = "localhost/dockerbank-pause:latest"
BUSYBOX = "/bin/busybox"
#: the pause process: waits without a process per second, exits 0 on TERM/INT (the stop signal)
PAUSE_COMMAND = ["/busybox", "sh", "-c", "trap 'exit 0' TERM INT; /busybox sleep infinity & wait"]


def pause_rootfs_tar(out: Path, busybox: str = BUSYBOX) -> Path:
    """Write the pause image's rootfs (busybox-static as ``/busybox``, which it must be called to
    take its applet from the first argument, and the mount points) to ``out``."""
    if not os.path.exists(busybox):
        raise NotFound(f"{busybox} not found: install Debian's busybox-static (the pods' pause process)",
                       exit_code=125)
    data = Path(busybox).read_bytes()
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as archive:
        for name in ("dev", "etc", "proc", "sys", "tmp"):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            archive.addfile(info)
        info = tarfile.TarInfo("busybox")
        info.size, info.mode, info.mtime = len(data), 0o755, 0
        archive.addfile(info, io.BytesIO(data))
    return out


def ensure_pause_image(images: ImageStore) -> str:
    """The reference of the pause image, imported into ``images`` first when it is missing."""
    from dockerbank.image.importer import import_rootfs

    try:
        images.resolve(PAUSE_IMAGE)
        return PAUSE_IMAGE
    except NotFound:
        pass
    images.config.tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=images.config.tmp_dir) as work:
        tar_path = pause_rootfs_tar(Path(work) / "pause.tar")
        with open(tar_path, "rb") as handle:
            import_rootfs(images, handle, PAUSE_IMAGE, ("CMD " + _json(PAUSE_COMMAND),),
                          "dockerbank pod infra (busybox-static pause)", created="1970-01-01T00:00:00Z")
    return PAUSE_IMAGE


def _json(value: list[str]) -> str:
    import json

    return json.dumps(value)
